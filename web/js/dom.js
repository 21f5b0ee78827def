// dom.js — the only way this page makes DOM nodes.
//
// h(tag, props, ...children) builds an element. Children that are strings
// or numbers become text nodes (document.createTextNode): whatever the API
// says — app ids, env values, log lines, error messages — is shown as text
// and never parsed as HTML. Nothing in this page turns a string into
// markup (tests/e2e/t0214 greps the scripts for every call that would).

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'hidden') el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function link(href, text, props) {
  return h('a', { href, ...props }, text);
}
