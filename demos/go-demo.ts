/**
 * The Go demo (`npm run demo:go`): seed 004's unfinished Go server, finished — players are
 * Perspectives, the game is a Viewable that plays the caller's colour, a spectator holds a
 * read-only facet — against a real broker on a temporary folder, over WebSocket, through the
 * public API only.
 *
 * Every step prints one numbered line: `✔` when it behaved as described, `✘` with what was
 * expected and what happened instead. The process exits 0 only if every step behaved as
 * described (1 otherwise, also on any unexpected error), after closing every connection and
 * server and removing the temporary folder.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  attach,
  type BrokerServer,
  brokerSchema,
  connect,
  ErrorCode,
  findGnuGo,
  GO_PLAYER,
  goSchema,
  parseSgf,
  ParallaxError,
  type RpcConnection,
  signUp,
  startBroker,
} from "../src/index.js";
import { failure, runStory, Steps } from "./steps.js";

const { Root } = brokerSchema;
const { Game, GameEvent_Which, GameListener, Illegal, MoveOutcome_Which, Phase } = goSchema;
type Game = goSchema.Game;
type MoveOutcome = goSchema.MoveOutcome;

// --- reporting -------------------------------------------------------------------------------

const steps = new Steps();

const ILLEGAL_NAMES = Object.fromEntries(Object.entries(Illegal).map(([k, v]) => [v, k]));
const describeOutcome = (o: MoveOutcome): string =>
  o.which() === MoveOutcome_Which.PLAYED
    ? `played as move ${o.played.number}`
    : o.which() === MoveOutcome_Which.ILLEGAL
      ? `refused: ${ILLEGAL_NAMES[o.illegal] ?? o.illegal}`
      : `ended ${o.ended}`;

// --- resources (closed at the end, whatever happens) -------------------------------------------

const folders: string[] = [];
const servers: BrokerServer[] = [];
const connections: RpcConnection[] = [];

async function cleanUp(): Promise<void> {
  for (const c of connections) c.close("the demo is done");
  for (const s of servers) await s.close();
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
}

/** A client listener that records what it hears and lets the story wait for an event. */
function follower() {
  const heard: string[] = [];
  const waiting: { kind: string; resolve: () => void }[] = [];
  const names = Object.fromEntries(Object.entries(GameEvent_Which).map(([k, v]) => [v, k.toLowerCase()]));
  const listener = GameListener.server({
    event({ event }) {
      const kind = names[event.which()] ?? "?";
      heard.push(kind === "chat" ? `chat ${event.chat.speaker}: ${event.chat.text}` : kind);
      for (const w of waiting.filter((x) => heard.some((h) => h.startsWith(x.kind)))) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve();
      }
    },
  });
  // Waits for an event; one that never comes fails the demo after 10 s instead of hanging it.
  const heardOf = (kind: string): Promise<void> =>
    heard.some((h) => h.startsWith(kind))
      ? Promise.resolve()
      : new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no "${kind}" event within 10 s`)), 10_000);
          waiting.push({
            kind,
            resolve: () => {
              clearTimeout(timer);
              resolve();
            },
          });
        });
  /** The next event, whatever it is (10 s at most). */
  const next = (): Promise<void> => {
    const n = heard.length;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no event within 10 s")), 10_000);
      const check = () => {
        if (heard.length > n) {
          clearTimeout(timer);
          resolve();
        } else setTimeout(check, 5);
      };
      check();
    });
  };
  return { listener, heard, heardOf, next };
}

// --- the story ---------------------------------------------------------------------------------

async function story(): Promise<void> {
  const data = mkdtempSync(path.join(tmpdir(), "parallax-go-demo-"));
  folders.push(data);
  const server = await startBroker({ port: 0, tcpPort: null, dataDir: data, signUp: "open" });
  servers.push(server);
  console.log(`broker with the Go server and open sign-up at ${server.url} (data in a temporary folder)`);

  const player = async (name: string) => {
    const connection = await connect(server.url);
    connections.push(connection);
    const up = await signUp(connection.bootstrap(Root), name, `${name}'s password`);
    if (up.identity === undefined) throw new Error(`${name}'s sign-up answered pending`);
    return attach(up.identity, GO_PLAYER);
  };

  console.log("\n## A challenge, accepted: the game is one Viewable shared by both players");
  const alice = await player("alice");
  const bob = await player("bob");
  const carol = await player("carol");
  const terms = {
    rules: { size: 9, komi: 6.5 },
    time: { system: goSchema.TimeSystem.BYOYOMI, mainSeconds: 600, periods: 5, periodSeconds: 30 },
    ranked: true,
    color: goSchema.ColorChoice.BLACK,
    opponent: "",
  };
  const { challenge, id } = await alice.challenge({ terms });
  const open = (await bob.openChallenges()).challenges.toArray();
  steps.report(
    open.length === 1 && open[0]?.challenger === "alice" && open[0].terms.rules.size === 9,
    `alice challenged (9×9, positional superko, area scoring, komi 6.5, byo-yomi 10 min + 5×30 s, ranked); bob sees challenge ${id} from "${open[0]?.challenger}"`,
    "one open 9×9 challenge from alice",
  );
  const accepted = challenge.accepted();
  const white = (await bob.accept({ id })).game;
  const black = (await accepted).game;
  const info = (await black.info()).info;
  steps.report(
    info.black === "alice" && info.white === "bob" && info.phase === Phase.PLAYING,
    `bob accepted; alice's challenge answered with the same game ${info.id}: black ${info.black}, white ${info.white}`,
    "black alice, white bob, playing",
  );
  const watch = (await carol.watch({ id: info.id })).spectator;
  const carolHears = follower();
  const aliceHears = follower();
  await watch.listen({ listener: carolHears.listener });
  await black.listen({ listener: aliceHears.listener });
  steps.report(true, "carol watches through a Spectator capability and listens; alice listens too", "");

  const play = (g: Game, x: number, y: number) => g.move({ point: { x, y } });
  // Walls: black on column 3, white on column 5 (column 4 stays neutral).
  for (let y = 0; y < 9; y++) {
    await play(black, 3, y);
    await play(white, 5, y);
  }
  steps.report(
    (await black.info()).info.moveCount === 18,
    "18 moves: black walls off columns 0–3 with column 3, white columns 5–8 with column 5",
    "18 moves played",
  );

  console.log("\n## A capture, a refused ko recapture, a refused move out of turn");
  for (const [g, x, y] of [
    [black, 7, 0],
    [white, 6, 2],
    [black, 6, 1],
    [white, 7, 3],
    [black, 8, 1],
    [white, 8, 2],
    [black, 1, 1],
    [white, 7, 1],
  ] as const) {
    await play(g, x, y);
  }
  const take = (await play(black, 7, 2)).outcome;
  const captured = take.which() === MoveOutcome_Which.PLAYED ? take.played.captured.toArray() : [];
  steps.report(
    captured.length === 1 && captured[0]?.x === 7 && captured[0].y === 1,
    `black played (7,2) inside white's area and captured the white stone at (${captured[0]?.x},${captured[0]?.y})`,
    "one white stone captured at (7,1)",
  );
  const ko = (await play(white, 7, 1)).outcome;
  steps.report(
    ko.which() === MoveOutcome_Which.ILLEGAL && ko.illegal === Illegal.KO,
    `white's immediate recapture at (7,1): ${describeOutcome(ko)}`,
    "refused: KO",
  );
  const outOfTurn = (await play(black, 0, 8)).outcome;
  steps.report(
    outOfTurn.which() === MoveOutcome_Which.ILLEGAL && outOfTurn.illegal === Illegal.NOT_YOUR_TURN,
    `alice moves again while it is bob's turn: ${describeOutcome(outOfTurn)} (her Game plays only black)`,
    "refused: NOT_YOUR_TURN",
  );
  const forged = watch.castAs(Game);
  const spectatorMove = await failure(forged.move({ point: { x: 4, y: 4 } }));
  steps.report(
    spectatorMove instanceof ParallaxError && spectatorMove.code === ErrorCode.UNIMPLEMENTED,
    `carol's Spectator cast to Game and called move: ${spectatorMove instanceof ParallaxError ? spectatorMove.code : spectatorMove}`,
    `it fails with ${ErrorCode.UNIMPLEMENTED}: a spectator's capability has no move`,
  );

  console.log("\n## An accepted undo");
  await play(white, 6, 4);
  await play(black, 4, 4);
  await black.requestUndo();
  await aliceHears.heardOf("undo_requested");
  await white.answerUndo({ accept: true });
  const afterUndo = (await black.board()).board;
  steps.report(
    afterUndo.moveCount === 28 && afterUndo.points[4 * 9 + 4] === 0,
    `alice played (4,4), asked to take it back, bob accepted: ${afterUndo.moveCount} moves, (4,4) empty again`,
    "28 moves, (4,4) empty",
  );
  await play(black, 1, 5);

  console.log("\n## Chat: players' lines reach everyone, spectators' only spectators");
  await watch.say({ text: "white should capture at (7,1) now" });
  await white.say({ text: "thanks for the game" });
  await carolHears.heardOf("chat bob");
  await aliceHears.heardOf("chat bob");
  const aliceChat = aliceHears.heard.filter((h) => h.startsWith("chat"));
  steps.report(
    aliceChat.length === 1 && carolHears.heard.filter((h) => h.startsWith("chat")).length === 2,
    `alice heard ${JSON.stringify(aliceChat)}; carol heard both lines`,
    "alice hears only bob's line; carol hears hers and bob's",
  );

  console.log("\n## Two passes, dead stones, the score");
  await white.pass();
  await black.pass();
  steps.report(
    (await black.info()).info.phase === Phase.SCORING,
    "white and black passed: play stopped for scoring",
    "",
  );
  for (const [x, y] of [
    [7, 0],
    [6, 1],
    [8, 1],
    [7, 2],
  ] as const) {
    await white.markDead({ point: { x, y }, dead: true });
  }
  const score = (await black.score()).score;
  steps.report(
    score.black === 36 && score.white === 42.5,
    `bob marked black's four stones inside his area dead: black ${score.black}, white ${score.white} (36 + komi 6.5)`,
    "black 36, white 42.5",
  );
  await black.acceptScore();
  const end = (await white.acceptScore()).outcome;
  await carolHears.heardOf("ended");
  steps.report(
    end.which() === MoveOutcome_Which.ENDED && end.ended === "W+6.5",
    `both accepted: the game ${describeOutcome(end)}; carol heard the end`,
    "ended W+6.5",
  );
  console.log("\n## The game as SGF");
  const sgf = (await watch.sgf()).sgf;
  console.log(sgf);
  const parsed = parseSgf(sgf);
  const replayed = parsed.game.cells();
  const finalBoard = (await black.board()).board.points;
  steps.report(
    ["SZ[9]", "KM[6.5]", "PB[alice]", "PW[bob]", "RE[W+6.5]", "OT[5x30 byo-yomi]"].every((p) =>
      sgf.includes(p),
    ) &&
      parsed.game.moveCount === 31 &&
      replayed.every((v, i) => v === finalBoard[i]),
    `carol exported the game as SGF FF[4]; read back, its ${parsed.game.moveCount} moves give the same final board`,
    "SZ[9] KM[6.5] PB[alice] PW[bob] RE[W+6.5] with the byo-yomi OT, 31 moves replaying to the same board",
  );
  const [ra, rb] = [(await alice.rating()).rating, (await bob.rating()).rating];
  steps.report(
    rb.rating > 1500 && ra.rating < 1500 && ra.games === 1,
    `ranked: Glicko-2 moved bob to ${rb.rating.toFixed(1)} and alice to ${ra.rating.toFixed(1)} (RD ${rb.deviation.toFixed(1)})`,
    "bob above 1500, alice below",
  );

  console.log("\n## A game against GNU Go, seated by the broker");
  if (findGnuGo() === undefined) {
    console.log("(GNU Go is not installed: `apt-get install gnugo` to play it)");
    return;
  }
  const vsEngine = (await alice.playEngine({ terms: { ...terms, ranked: false }, engine: "gnugo" })).game;
  const engineFollows = follower();
  await vsEngine.listen({ listener: engineFollows.listener });
  const opening: [number, number][] = [
    [4, 4],
    [2, 6],
    [6, 2],
  ];
  let replies = 0;
  for (const [x, y] of opening) {
    const board = (await vsEngine.board()).board;
    const point =
      board.points[y * 9 + x] === 0
        ? { x, y }
        : { x: board.points.indexOf(0) % 9, y: Math.floor(board.points.indexOf(0) / 9) };
    const before = board.moveCount;
    await vsEngine.move({ point });
    while ((await vsEngine.info()).info.moveCount < before + 2) await engineFollows.next();
    replies++;
  }
  const engineInfo = (await vsEngine.info()).info;
  const resigned = (await vsEngine.resign()).outcome;
  steps.report(
    engineInfo.white === "gnugo (bot)" && replies === 3 && resigned.ended === "W+R",
    `alice played black against ${engineInfo.white}: it answered each of her ${replies} moves (${engineInfo.moveCount} moves); she resigned: ${resigned.ended}`,
    "GNU Go plays white and answers 3 moves; the resignation ends it W+R",
  );
}

await runStory(steps, story, cleanUp, { blankLine: true });
