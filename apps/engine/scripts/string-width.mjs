// The bundle's stand-in for the string-width package (used by yargs to lay out --help). The
// package builds an Intl.Segmenter when it loads, which costs tens of milliseconds on every
// command; this one measures by code point: ANSI escapes and combining marks take no column,
// East Asian wide and emoji ranges take two, everything else one.
const ansi = /\u001B\[[0-9;?]*[ -/]*[@-~]|\u001B\][^\u0007\u001B]*(?:\u0007|\u001B\\)|\u009B[0-9;?]*[ -/]*[@-~]/g;

const zeroWidth = [
  [0x0300, 0x036f], [0x0483, 0x0489], [0x0591, 0x05bd], [0x0610, 0x061a], [0x064b, 0x065f], [0x200b, 0x200f],
  [0x2028, 0x202e], [0x2060, 0x2064], [0x20d0, 0x20ff], [0xfe00, 0xfe0f], [0xfe20, 0xfe2f], [0xfeff, 0xfeff],
];
const wide = [
  [0x1100, 0x115f], [0x231a, 0x231b], [0x2329, 0x232a], [0x23e9, 0x23ec], [0x25fd, 0x25fe], [0x2614, 0x2615],
  [0x2648, 0x2653], [0x26aa, 0x26ab], [0x2e80, 0x303e], [0x3041, 0x33ff], [0x3400, 0x4dbf], [0x4e00, 0x9fff],
  [0xa000, 0xa4cf], [0xa960, 0xa97f], [0xac00, 0xd7a3], [0xf900, 0xfaff], [0xfe10, 0xfe19], [0xfe30, 0xfe6f],
  [0xff00, 0xff60], [0xffe0, 0xffe6], [0x1f300, 0x1f64f], [0x1f900, 0x1f9ff], [0x20000, 0x3fffd],
];

function inRanges(code, ranges) {
  for (const [lo, hi] of ranges) if (code >= lo && code <= hi) return true;
  return false;
}

// eslint-disable-next-line no-restricted-syntax -- it stands in for string-width, whose export is a default one
export default function stringWidth(text, options = {}) {
  if (typeof text !== 'string' || text.length === 0) return 0;
  const plain = options.countAnsiEscapeCodes ? text : text.replace(ansi, '');
  let width = 0;
  for (const ch of plain) {
    const code = ch.codePointAt(0);
    if (code < 0x20 || (code >= 0x7f && code < 0xa0) || inRanges(code, zeroWidth)) continue;
    width += inRanges(code, wide) ? 2 : 1;
  }
  return width;
}
