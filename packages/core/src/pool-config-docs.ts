import { type SchemaNode, allowedText, poolConfigJsonSchema } from './pool-config-issues.js';

/*
 * The reference tables of docs/configuration.md, written from the schema itself: a key added,
 * renamed or given another default shows up here, and the docs test fails until the page says so.
 */

interface Row {
  path: string;
  type: string;
  required: boolean;
  fallback: string;
  allowed: string;
  description: string;
}

function typeOf(node: SchemaNode): string {
  if (node.enum) return 'string';
  if (node.type === 'array') {
    if (node.prefixItems) return `[${node.prefixItems.map(typeOf).join(', ')}]`;
    const items = node.items || undefined;
    return items ? `list of ${items.type === 'object' ? 'tables' : typeOf(items)}` : 'list';
  }
  if (node.type === 'object') {
    const values = typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined;
    return values ? `table of ${typeOf(values)}` : 'table';
  }
  return node.type ?? 'any';
}

function code(value: unknown): string {
  return `\`${JSON.stringify(value).replaceAll('|', '\\|')}\``;
}

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('<', '\\<').replaceAll('\n', ' ');
}

function leafRow(path: string, node: SchemaNode, required: boolean): Row {
  let allowed = allowedText(node) ?? '';
  if (node.pattern && !allowed) allowed = `matches \`${node.pattern}\``;
  if (node.type === 'array' && node.minItems && !node.prefixItems) allowed = `at least ${node.minItems}`;
  if (node.type === 'string' && !node.enum && !node.pattern && !allowed) allowed = 'text';
  return {
    path,
    type: typeOf(node),
    required,
    fallback: node.default === undefined ? '' : code(node.default),
    allowed,
    description: node.description ?? '',
  };
}

/** Rows for every key under `node`, depth first; lists of tables get `[]` in their path. */
function collect(node: SchemaNode, path: string, rows: Row[]): void {
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const childPath = path ? `${path}.${key}` : key;
    const required = (node.required ?? []).includes(key) && child.default === undefined;
    const items = child.type === 'array' && child.items ? child.items : undefined;
    if (child.type === 'object' && child.properties) {
      rows.push({ ...leafRow(childPath, child, required), type: 'table', fallback: '' });
      collect(child, childPath, rows);
    } else if (items && items.type === 'object' && items.properties) {
      rows.push(leafRow(childPath, child, required));
      collect(items, `${childPath}[]`, rows);
    } else {
      rows.push(leafRow(childPath, child, required));
    }
  }
}

/** Markdown: one table per top-level section, every key with type, default, allowed values and meaning. */
export function poolConfigReference(): string {
  const root = poolConfigJsonSchema();
  const parts: string[] = [];
  for (const [section, node] of Object.entries(root.properties ?? {})) {
    const rows: Row[] = [];
    const holder: SchemaNode = {
      type: 'object',
      properties: { [section]: node },
      required: root.required ?? [],
    };
    collect(holder, '', rows);
    const [head, ...keys] = rows;
    const required = head?.required ? ' (required)' : '';
    parts.push(`### \`${section}\`${required}\n\n${cell(node.description ?? '')}\n`);
    const body = (keys.length > 0 ? keys : rows).map(
      (r) =>
        `| \`${r.path}\`${r.required ? ' **required**' : ''} | ${cell(r.type)} | ${r.fallback} | ${cell(r.allowed)} | ${cell(r.description)} |`,
    );
    parts.push(`| key | type | default | allowed | meaning |\n|---|---|---|---|---|\n${body.join('\n')}\n`);
  }
  return parts.join('\n');
}
