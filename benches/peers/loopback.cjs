// Preloaded into mcp-hub (NODE_OPTIONS=--require): it has no host option and listens on every
// interface; this gives a port-only listen() the host 127.0.0.1, so the benchmark stays on
// loopback.
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number") {
    return listen.call(this, args[0], "127.0.0.1", ...args.slice(1).filter((a) => typeof a === "function"));
  }
  return listen.apply(this, args);
};
