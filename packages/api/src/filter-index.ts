/**
 * The live stream's filters, in a tree by the literal dot-segments their glob starts with
 * (`account.acctA.*` under account → acctA, `block.*` under block, `*` at the root). An event
 * visits only the nodes along its names' segments, so thousands of account topics cost a few
 * map lookups per event, not one match each; the glob is matched only for the filters found.
 */
interface Node<G> {
  children: Map<string, Node<G>>;
  groups: Map<string, G>;
}

export interface FilterIndex<G> {
  get(glob: string, key: string): G | undefined;
  /** Adds a group under `glob`'s literal prefix; `key` tells groups at one node apart. */
  set(glob: string, key: string, group: G): void;
  delete(glob: string, key: string): void;
  /** Calls `visit` with every group whose literal prefix leads some name (a group may come twice). */
  visit(names: readonly string[], visit: (group: G) => void): void;
  readonly size: number;
}

function literalSegments(glob: string): string[] {
  const segments = glob.split('.');
  const star = segments.findIndex((s) => s.includes('*'));
  return star === -1 ? segments : segments.slice(0, star);
}

export function createFilterIndex<G>(): FilterIndex<G> {
  const root: Node<G> = { children: new Map(), groups: new Map() };
  let size = 0;
  const nodeOf = (glob: string, create: boolean): Node<G>[] | null => {
    const path = [root];
    let node = root;
    for (const segment of literalSegments(glob)) {
      let child = node.children.get(segment);
      if (!child) {
        if (!create) return null;
        child = { children: new Map(), groups: new Map() };
        node.children.set(segment, child);
      }
      node = child;
      path.push(node);
    }
    return path;
  };
  return {
    get(glob, key) {
      return nodeOf(glob, false)?.at(-1)!.groups.get(key);
    },
    set(glob, key, group) {
      const node = nodeOf(glob, true)!.at(-1)!;
      if (!node.groups.has(key)) size++;
      node.groups.set(key, group);
    },
    delete(glob, key) {
      const path = nodeOf(glob, false);
      if (!path || !path.at(-1)!.groups.delete(key)) return;
      size--;
      // Prune the nodes left empty, deepest first.
      const segments = literalSegments(glob);
      for (let i = path.length - 1; i > 0; i--) {
        const node = path[i]!;
        if (node.groups.size > 0 || node.children.size > 0) break;
        path[i - 1]!.children.delete(segments[i - 1]!);
      }
    },
    visit(names, visit) {
      for (const name of names) {
        let node: Node<G> | undefined = root;
        for (const group of node.groups.values()) visit(group);
        let from = 0;
        while (node) {
          const dot = name.indexOf('.', from);
          const segment = dot === -1 ? name.slice(from) : name.slice(from, dot);
          node = node.children.get(segment);
          if (!node) break;
          for (const group of node.groups.values()) visit(group);
          if (dot === -1) break;
          from = dot + 1;
        }
      }
    },
    get size() {
      return size;
    },
  };
}
