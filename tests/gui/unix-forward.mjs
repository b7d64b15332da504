// Forwards a Unix-domain socket to a TCP port on this network namespace's loopback:
//
//   node unix-forward.mjs SOCKET_PATH PORT
//
// The two-app GUI test runs it inside a lab namespace (`ip netns exec NS node …`) next to that
// namespace's tauri-driver, which listens on 127.0.0.1:PORT there. Filesystem sockets are
// shared across network namespaces, so the test (in its own namespace) reaches the driver
// through SOCKET_PATH without any route between the namespaces. Prints "ready" once listening;
// exits when its stdin closes (its parent is gone) or on SIGTERM.

import { connect, createServer } from "node:net";
import { rmSync } from "node:fs";

const [socketPath, portArg] = process.argv.slice(2);
const port = Number(portArg);
if (!socketPath || !Number.isInteger(port) || port <= 0) {
  console.error("usage: node unix-forward.mjs SOCKET_PATH PORT");
  process.exit(2);
}

rmSync(socketPath, { force: true });
const server = createServer((client) => {
  const upstream = connect(port, "127.0.0.1");
  client.pipe(upstream);
  upstream.pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on("error", close);
  upstream.on("error", close);
  client.on("close", close);
  upstream.on("close", close);
});
server.listen(socketPath, () => console.log("ready"));

const stop = () => {
  server.close();
  rmSync(socketPath, { force: true });
  process.exit(0);
};
process.on("SIGTERM", stop);
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
