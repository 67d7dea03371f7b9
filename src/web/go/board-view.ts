/**
 * The Go board as HTML: a table whose every point is a `<button>` named for screen readers
 * ("D4, empty", "C3, black, last move", "E5, white, dead", "F6, empty, white territory"), with
 * the stone and marks in data attributes the stylesheet draws (src/web/go/go.css). Clicking a
 * point, or Enter/Space on it, calls `onPick`; the arrow keys move between points (one point of
 * the board is in the tab order at a time, as a grid's roving focus).
 *
 * Invariant: the board shows exactly one `BoardPicture` — `render` sets every point from the
 * picture it is given (a point's stone is never added to what was there), so a picture drawn
 * again after a reconnect, or twice, shows each stone once.
 *
 * Tests: test/web/go.test.ts
 */
import { type DomElement, type DomEvent, el } from "../app/dom.js";
import {
  type BoardPoint,
  BLACK,
  columnLetter,
  pointLabel,
  starPoints,
  type Territory,
  WHITE,
} from "./coords.js";

/** What the board shows. */
export interface BoardPicture {
  /** size × size, row by row from the top: 0 empty, 1 black, 2 white. */
  readonly points: ArrayLike<number>;
  /** Indices (y × size + x) of stones marked dead. */
  readonly dead?: ReadonlySet<number>;
  readonly last?: BoardPoint;
  /** Index → whose territory (the scoring phase and a scored end). */
  readonly territory?: ReadonlyMap<number, Territory>;
}

interface KeyEvent extends DomEvent {
  readonly key: string;
}

interface Focusable extends DomElement {
  tabIndex: number;
}

export class BoardView {
  readonly element: DomElement;
  readonly size: number;
  readonly #buttons: Focusable[] = [];
  readonly #labels: string[] = [];
  #focus = 0;
  #enabled = true;

  constructor(size: number, label: string, onPick: (p: BoardPoint) => void) {
    this.size = size;
    const stars = new Set(starPoints(size).map((p) => p.y * size + p.x));
    const letters = () =>
      el(
        "tr",
        { "aria-hidden": "true" },
        el("th", {}),
        ...Array.from({ length: size }, (_, x) => el("th", { scope: "col" }, columnLetter(x))),
        el("th", {}),
      );
    const rows: DomElement[] = [letters()];
    for (let y = 0; y < size; y++) {
      const cells: DomElement[] = [];
      for (let x = 0; x < size; x++) {
        const i = y * size + x;
        const edges = [
          y === 0 && "top",
          y === size - 1 && "bottom",
          x === 0 && "left",
          x === size - 1 && "right",
        ];
        const button = el("button", {
          type: "button",
          class: ["pt", ...edges.filter((e) => e !== false), stars.has(i) && "star"]
            .filter(Boolean)
            .join(" "),
          "data-x": String(x),
          "data-y": String(y),
          tabindex: i === 0 ? "0" : "-1",
        }) as Focusable;
        button.addEventListener("click", () => {
          this.#moveFocus(i, false);
          if (this.#enabled) onPick({ x, y });
        });
        button.addEventListener("keydown", (e) => this.#key(e as KeyEvent, x, y));
        this.#buttons.push(button);
        this.#labels.push("");
        cells.push(el("td", {}, button));
      }
      const row = String(size - y);
      rows.push(
        el(
          "tr",
          {},
          el("th", { scope: "row", "aria-hidden": "true" }, row),
          ...cells,
          el("th", { "aria-hidden": "true" }, row),
        ),
      );
    }
    rows.push(letters());
    this.element = el(
      "table",
      { class: `goban size-${size}`, "aria-label": label },
      el("tbody", {}, ...rows),
    );
    this.render({ points: new Uint8Array(size * size) });
  }

  /** Shows `picture` (every point set from it). */
  render(picture: BoardPicture): void {
    const size = this.size;
    const last = picture.last === undefined ? -1 : picture.last.y * size + picture.last.x;
    for (let i = 0; i < size * size; i++) {
      const button = this.#buttons[i] as Focusable;
      const stone = picture.points[i] ?? 0;
      const dead = picture.dead?.has(i) === true && stone !== 0;
      const territory = picture.territory?.get(i);
      const label = pointLabel({ x: i % size, y: Math.floor(i / size) }, size, stone, {
        dead,
        last: i === last,
        territory,
      });
      if (this.#labels[i] === label) continue;
      this.#labels[i] = label;
      button.setAttribute("aria-label", label);
      setData(button, "stone", stone === BLACK ? "black" : stone === WHITE ? "white" : undefined);
      setData(button, "dead", dead ? "true" : undefined);
      setData(button, "last", i === last ? "true" : undefined);
      setData(button, "territory", territory);
    }
  }

  /** Whether clicks play (false for spectators and while nothing may be played). */
  setEnabled(enabled: boolean): void {
    this.#enabled = enabled;
    this.element.dataset.enabled = enabled ? "true" : "false";
    for (const b of this.#buttons) {
      if (enabled) b.removeAttribute("aria-disabled");
      else b.setAttribute("aria-disabled", "true");
    }
  }

  #key(event: KeyEvent, x: number, y: number): void {
    const size = this.size;
    const moves: Record<string, [number, number]> = {
      ArrowUp: [0, -1],
      ArrowDown: [0, 1],
      ArrowLeft: [-1, 0],
      ArrowRight: [1, 0],
    };
    const step = moves[event.key];
    if (step === undefined) {
      if (event.key === "Home") this.#moveFocus(y * size, true);
      else if (event.key === "End") this.#moveFocus(y * size + size - 1, true);
      else return;
      event.preventDefault();
      return;
    }
    event.preventDefault();
    const nx = Math.min(size - 1, Math.max(0, x + step[0]));
    const ny = Math.min(size - 1, Math.max(0, y + step[1]));
    this.#moveFocus(ny * size + nx, true);
  }

  #moveFocus(i: number, focus: boolean): void {
    const from = this.#buttons[this.#focus];
    const to = this.#buttons[i];
    if (from === undefined || to === undefined) return;
    from.tabIndex = -1;
    to.tabIndex = 0;
    this.#focus = i;
    if (focus) to.focus();
  }
}

function setData(node: DomElement, key: string, value: string | undefined): void {
  if (value === undefined) delete node.dataset[key];
  else node.dataset[key] = value;
}
