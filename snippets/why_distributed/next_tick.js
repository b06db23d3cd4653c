// The Node.js side of examples/why_distributed/starvation.py: the same four
// chains, with a socket that has data waiting and a timer due after 1 ms.
// Run it: node snippets/why_distributed/next_tick.js
"use strict";
const net = require("node:net");

const LIMIT = 100_000;

function watch(server, client) {
  const w = { links: 0, ioAt: null, timerAt: null };
  server.once("data", () => { w.ioAt = w.links; });
  setTimeout(() => { w.timerAt = w.links; }, 1);
  client.write("request"); // on loopback, in the server socket's buffer at once
  w.more = () => (w.ioAt === null || w.timerAt === null) && w.links < LIMIT;
  return w;
}

const chains = {
  "process.nextTick chain": (w, done) => {
    const link = () => { w.links += 1; w.more() ? process.nextTick(link) : done(); };
    process.nextTick(link);
  },
  "await in a loop": async (w, done) => {
    while (w.more()) { w.links += 1; await null; } // a promise microtask per link
    done();
  },
  "setImmediate chain": (w, done) => {
    const link = () => { w.links += 1; w.more() ? setImmediate(link) : done(); };
    setImmediate(link);
  },
};

async function run(name, chain, server, client) {
  const w = watch(server, client);
  await new Promise((resolve) => chain(w, resolve));
  const io = w.ioAt === null ? "never" : `after link ${w.ioAt}`;
  const timer = w.timerAt === null ? "no" : "yes";
  console.log(`${name.padEnd(23)} I/O serviced: ${io.padEnd(15)} timer fired during the chain: ${timer}`);
  // Let the starved ones run before the next chain.
  while (w.ioAt === null || w.timerAt === null) await new Promise((r) => setTimeout(r, 1));
}

const server = net.createServer();
server.listen(0, "127.0.0.1", () => {
  server.once("connection", async (accepted) => {
    for (const [name, chain] of Object.entries(chains)) await run(name, chain, accepted, client);
    client.end();
    accepted.end();
    server.close();
  });
  const client = net.connect(server.address().port, "127.0.0.1");
});
