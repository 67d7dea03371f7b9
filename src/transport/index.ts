/**
 * The transport layer's public surface: whole Cap'n Proto messages over WebSocket, TCP or memory.
 * Browser bundles import `./browser-websocket.js` directly; this index pulls in Node modules.
 *
 * Tests: test/transport/.
 */

export { connectBrowserWebSocket } from "./browser-websocket.js";
export { memoryPair } from "./memory-transport.js";
export {
  checkFramedMessage,
  type FramingLimits,
  framedMessageBytes,
  StreamFrameDecoder,
  segmentTableBytes,
} from "./stream-framing.js";
export {
  connectTcp,
  listenTcp,
  type TcpListener,
  type TcpListenOptions,
  TcpTransport,
} from "./tcp-transport.js";
export { type CloseInfo, CloseCode, type Transport, type TransportKind } from "./transport.js";
export {
  attachWebSocketServer,
  connectWebSocket,
  type WebSocketAttachOptions,
  type WebSocketListener,
  WebSocketTransport,
} from "./websocket-transport.js";
