// The Node.js twin of examples/why_distributed/recipe_api.py for the benchmark:
// GET /recipes/42 answers the same JSON shape (producer_pid + recipe).
// Run: HOST=127.0.0.1 PORT=4001 node bench/why_distributed/node_server.js
const http = require("node:http");

const recipe = {
  id: 42,
  name: "Chicken Tikka Masala",
  steps: "Throw it in a pot...",
  ingredients: [
    { id: 1, name: "Chicken", quantity: "1 lb" },
    { id: 2, name: "Sauce", quantity: "2 cups" },
  ],
};

function send(res, status, payload) {
  const body = JSON.stringify(payload);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/recipes/42") {
    send(res, 200, { producer_pid: process.pid, recipe });
  } else {
    send(res, 404, { error: "not found" });
  }
});
server.listen(Number(process.env.PORT || 4001), process.env.HOST || "127.0.0.1");
process.on("SIGTERM", () => server.close(() => process.exit(0)));
