/**
 * The one DOM helper of the extension: its rows, dialogs and views are built from plain
 * elements, the way Lumino widgets build their nodes.
 */

/** An attribute's value: `false`, null and undefined leave it out, `true` sets it empty. */
export type AttrValue = string | number | boolean | null | undefined | EventListener | ((e: any) => unknown);

/**
 * Create an element with attributes and children. `className` sets the class, `on<event>`
 * functions become listeners, anything else an attribute.
 */
export function h(tag: string, attrs: Record<string, AttrValue> = {}, ...children: (Node | string | null)[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) {
      continue;
    }
    if (k === 'className') {
      el.className = String(v);
    } else if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v as EventListener);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children) {
    if (c !== null) {
      el.append(c);
    }
  }
  return el;
}
