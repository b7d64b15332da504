// Small line icons drawn as SVG (they never depend on a font having the glyph).

const SVG = "http://www.w3.org/2000/svg";

/**
 * A padlock: the mark of a private room. With `label` it is an image with that accessible name;
 * without, it is decoration (the text beside it says it).
 */
export function lockIcon(label: string | null = null, size = 14): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  const attrs: Record<string, string> = {
    viewBox: "0 0 16 16",
    width: String(size),
    height: String(size),
    class: "lock-icon",
    focusable: "false",
  };
  if (label === null) attrs["aria-hidden"] = "true";
  else Object.assign(attrs, { role: "img", "aria-label": label });
  for (const [k, v] of Object.entries(attrs)) svg.setAttribute(k, v);
  const body = document.createElementNS(SVG, "rect");
  for (const [k, v] of Object.entries({ x: "2.5", y: "7", width: "11", height: "8", rx: "1.5" })) body.setAttribute(k, v);
  const shackle = document.createElementNS(SVG, "path");
  shackle.setAttribute("d", "M5 7V5a3 3 0 0 1 6 0v2");
  svg.append(body, shackle);
  return svg;
}
