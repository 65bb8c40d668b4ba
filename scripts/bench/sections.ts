/** How `pnpm bench` updates BENCHMARKS.md without losing the sections it does not write. */

/**
 * `generated` with the `## ` sections of `existing` that it does not write kept in place: a generated section
 * replaces the existing one with the same title (the heading up to its command in brackets), new ones go at the end.
 */
export function mergeSections(existing: string, generated: string): string {
  const split = (md: string): { head: string; sections: string[] } => {
    const parts = md.split(/^(?=## )/m);
    return parts[0]!.startsWith("## ") ? { head: "", sections: parts } : { head: parts[0]!, sections: parts.slice(1) };
  };
  const title = (section: string): string => section.slice(0, section.indexOf("\n")).split(" (")[0]!.trim();
  const fresh = split(generated);
  const byTitle = new Map(fresh.sections.map((sec) => [title(sec), sec]));
  const kept = split(existing).sections.map((sec) => {
    const replacement = byTitle.get(title(sec));
    byTitle.delete(title(sec));
    return replacement ?? sec;
  });
  const joined = [fresh.head, ...kept, ...byTitle.values()].map((part) => (part.endsWith("\n\n") ? part : `${part.trimEnd()}\n\n`));
  return `${joined.join("").trimEnd()}\n`;
}
