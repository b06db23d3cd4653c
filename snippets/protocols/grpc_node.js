// recipe-api's gRPC contract from Node.js: a client and a server built at run
// time from OUR examples/protocols/recipe.proto, with @grpc/grpc-js and
// @grpc/proto-loader (the libraries of the Node.js book).
//
//   node snippets/protocols/grpc_node.js client 127.0.0.1:4003
//   PORT=4003 node snippets/protocols/grpc_node.js server
//
// PROTO and PACKAGE load another contract: the book's shared/grpc-recipe.proto
// (package `recipe`) shows that a different package is a different service.
'use strict';
const path = require('node:path');
const util = require('node:util');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

// --8<-- [start:load]
const PROTO = process.env.PROTO || path.join(__dirname, '../../examples/protocols/recipe.proto');
const PACKAGE = process.env.PACKAGE || 'recipe.v1';
// keepCase: producer_pid stays producer_pid, as in Python (not producerPid).
const definition = loader.loadSync(PROTO, { keepCase: true });
const RecipeService = PACKAGE.split('.').reduce(
  (namespace, name) => namespace[name], grpc.loadPackageDefinition(definition),
).RecipeService;
// --8<-- [end:load]

// --8<-- [start:client]
async function client(target) {
  const stub = new RecipeService(target, grpc.credentials.createInsecure());
  const options = () => ({ deadline: Date.now() + 2000 }); // a deadline on every call
  const getMetaData = util.promisify(stub.GetMetaData.bind(stub));
  const getRecipe = util.promisify(stub.GetRecipe.bind(stub));
  try {
    const [meta, reply] = await Promise.all([
      getMetaData({}, options()),
      getRecipe({ id: 42 }, options()),
    ]);
    console.log(JSON.stringify({ node_pid: process.pid, meta, reply }, null, 2));
  } catch (error) {
    console.error(`${grpc.status[error.code]}: ${error.details}`);
    process.exitCode = 1;
  } finally {
    stub.close();
  }
}
// --8<-- [end:client]

// --8<-- [start:server]
const RECIPE = {
  id: 42, name: 'Chicken Tikka Masala', steps: 'Throw it in a pot...',
  ingredients: [{ id: 1, name: 'Chicken', quantity: '1 lb' }],
};

function server(host, port) {
  const server = new grpc.Server();
  server.addService(RecipeService.service, {
    GetMetaData: (_call, callback) => callback(null, { pid: process.pid }),
    GetRecipe: (call, callback) => {
      if (call.request.id !== 42) {
        const details = `no recipe with id ${call.request.id}`;
        return callback({ code: grpc.status.NOT_FOUND, details });
      }
      callback(null, { producer_pid: process.pid, recipe: RECIPE });
    },
    ListRecipes: (call) => { call.write(RECIPE); call.end(); },
  });
  server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (error) => {
    if (error) { console.error(error.message); process.exit(1); }
    console.log(`recipe-api (Node.js gRPC) listening on ${host}:${port}`);
  });
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => server.tryShutdown(() => process.exit(0)));
  }
}
// --8<-- [end:server]

const [mode, target] = process.argv.slice(2);
if (mode === 'client' && target) {
  client(target);
} else if (mode === 'server') {
  server(process.env.HOST || '127.0.0.1', Number(process.env.PORT || 4003));
} else {
  console.error('usage: grpc_node.js client HOST:PORT | PORT=4003 grpc_node.js server');
  process.exit(2);
}
