/**
 * The `parallax` command line. A composition root: it may import anything.
 *
 *   parallax serve [--port 8700] [--tcp-port 8701] [--host 127.0.0.1] [--data ./data]
 */
import { mkdirSync } from "node:fs";
import { parseArgs } from "node:util";
import { demoBootstrap } from "./services/demo/demo-service.js";
import { startServer } from "./server.js";

const USAGE = "usage: parallax serve [--port 8700] [--tcp-port 8701] [--host 127.0.0.1] [--data ./data]";

function port(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new Error(`--${name} must be a port number, got ${value}`);
  return n;
}

async function serve(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string", default: "8700" },
      "tcp-port": { type: "string", default: "8701" },
      host: { type: "string", default: "127.0.0.1" },
      data: { type: "string", default: "./data" },
    },
    strict: true,
  });
  mkdirSync(values.data, { recursive: true });
  const server = await startServer({
    host: values.host,
    port: port(values.port, "port"),
    tcpPort: port(values["tcp-port"], "tcp-port"),
    bootstrap: () => demoBootstrap(),
  });
  process.stdout.write(
    `parallax: serving the demo interface (schema/demo.capnp)\n` +
      `parallax: listening on ${server.url} and tcp://${values.host}:${server.tcpPort}\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      process.stdout.write(`parallax: ${signal}: closing ${server.connections.size} connection(s)\n`);
      resolve();
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  await server.close();
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "serve":
      return serve(rest);
    case "help":
    case "--help":
      process.stdout.write(`${USAGE}\n`);
      return 0;
    default:
      process.stderr.write(
        `parallax: ${command === undefined ? "no command" : `unknown command ${JSON.stringify(command)}`}\n${USAGE}\n`,
      );
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`parallax: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
