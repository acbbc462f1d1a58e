/**
 * Go's text/tabwriter as docker configures it (minwidth 10, padding 3, spaces): tab-terminated
 * cells are aligned per column, the text after a line's last tab is left as it is.
 */
export function alignColumns(text: string, minWidth = 10, padding = 3): string {
  const lines = text.split('\n').map((line) => line.split('\t'));
  const widths: number[] = [];
  for (const cells of lines) {
    cells.slice(0, -1).forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? minWidth, [...cell].length + padding);
    });
  }
  return lines
    .map((cells) => cells.map((cell, i) => (i < cells.length - 1 ? cell + ' '.repeat(widths[i]! - [...cell].length) : cell)).join(''))
    .join('\n');
}
