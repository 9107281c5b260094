// The administrator's page of lgsp: failed messages, replay and audit over the admin
// API. Every element is built with textContent: a payload's markup stays text.
'use strict';

const T = {
  vi: {
    'lang.switch': 'English',
    'nav.groups': 'Nhóm lỗi', 'nav.messages': 'Tin nhắn lỗi', 'nav.requests': 'Yêu cầu phê duyệt',
    'nav.audit': 'Nhật ký kiểm toán', 'nav.overview': 'Tổng quan',
    'signout': 'Đăng xuất', 'signin': 'Đăng nhập', 'signin.title': 'Đăng nhập quản trị lgsp',
    'signin.token': 'Mã truy cập (token)', 'signin.hint': 'Mã chỉ được giữ trong thẻ trình duyệt này, không lưu vào cookie.',
    'groups.title': 'Nhóm tin nhắn lỗi theo nguyên nhân', 'groups.none': 'Không có tin nhắn lỗi nào.',
    'messages.title': 'Tin nhắn lỗi', 'messages.none': 'Không có tin nhắn nào khớp.', 'more': 'Xem thêm',
    'col.count': 'Số lượng', 'col.route': 'Tuyến', 'col.kind': 'Loại lỗi', 'col.code': 'Mã lỗi',
    'col.first': 'Lần đầu', 'col.last': 'Lần cuối', 'col.error': 'Lỗi', 'col.id': 'ID',
    'col.message': 'Mã tin nhắn', 'col.status': 'Trạng thái', 'col.at': 'Thời điểm', 'col.actor': 'Người thực hiện',
    'col.action': 'Thao tác', 'col.note': 'Ghi chú', 'col.event': 'Sự kiện', 'col.target': 'Đích', 'col.detail': 'Chi tiết',
    'col.records': 'Bản ghi', 'col.requester': 'Người yêu cầu',
    'f.route': 'Tuyến', 'f.kind': 'Loại lỗi', 'f.code': 'Mã lỗi', 'f.text': 'Nội dung lỗi', 'f.from': 'Từ (RFC 3339)',
    'f.to': 'Đến (RFC 3339)', 'f.status': 'Trạng thái', 'f.apply': 'Lọc', 'f.any': '(tất cả)',
    'st.failed': 'lỗi', 'st.replayed': 'đã gửi lại', 'st.discarded': 'đã loại bỏ',
    'open': 'Mở', 'replay': 'Gửi lại', 'replay.group': 'Gửi lại cả nhóm', 'edit': 'Sửa và gửi lại',
    'edit.send': 'Gửi bản đã sửa', 'cancel': 'Hủy', 'discard': 'Loại bỏ', 'discard.reason': 'Lý do loại bỏ (bắt buộc)',
    'confirm.group': 'Gửi lại {n} tin nhắn của nhóm này?', 'progress': 'Đã gửi lại {done}, còn {left}',
    'done.replay': 'Đã gửi lại tin nhắn {id}.', 'done.discard': 'Đã loại bỏ tin nhắn {id}.',
    'done.request': 'Đã tạo yêu cầu {id}: cần một người vận hành khác phê duyệt.',
    'done.group': 'Đã gửi lại {n} tin nhắn; {refused} bị từ chối.',
    'msg.title': 'Tin nhắn lỗi {id}', 'msg.summary': 'Tóm tắt', 'msg.envelope': 'Phong bì', 'msg.headers': 'Tiêu đề',
    'msg.body': 'Nội dung', 'msg.replays': 'Các lần gửi lại và chỉnh sửa', 'msg.story': 'Hành trình của tin nhắn',
    'msg.masked': 'Vai trò xem: mọi giá trị trong nội dung được che (***).', 'msg.edited': 'đã sửa',
    'msg.errorat': 'Vị trí lỗi được đánh dấu.',
    'requests.title': 'Yêu cầu phê duyệt', 'requests.none': 'Không có yêu cầu nào.', 'approve': 'Phê duyệt',
    'audit.title': 'Nhật ký kiểm toán', 'audit.ok': 'Chuỗi băm hợp lệ: {n} mục, đầu chuỗi {head}.',
    'audit.bad': 'Chuỗi băm KHÔNG hợp lệ tại mục {seq}: {why}',
    'overview.title': 'Tổng quan bus', 'overview.broker': 'Kết nối RabbitMQ', 'overview.store': 'Kho lưu tin lỗi',
    'overview.inflight': 'Đang xử lý', 'overview.none': 'Chưa có số liệu.', 'up': 'hoạt động', 'down': 'mất kết nối',
    'm.received': 'Nhận', 'm.delivered': 'Đã chuyển', 'm.failed': 'Lỗi', 'm.retried': 'Thử lại',
    'error.unreachable': 'Không kết nối được máy chủ lgsp.', 'loading': 'Đang tải…',
  },
  en: {
    'lang.switch': 'Tiếng Việt',
    'nav.groups': 'Failure groups', 'nav.messages': 'Failed messages', 'nav.requests': 'Approval requests',
    'nav.audit': 'Audit log', 'nav.overview': 'Overview',
    'signout': 'Sign out', 'signin': 'Sign in', 'signin.title': 'Sign in to lgsp administration',
    'signin.token': 'Access token', 'signin.hint': 'The token is kept in this browser tab only, never in a cookie.',
    'groups.title': 'Failed messages grouped by cause', 'groups.none': 'No failed messages.',
    'messages.title': 'Failed messages', 'messages.none': 'No message matches.', 'more': 'More',
    'col.count': 'Count', 'col.route': 'Route', 'col.kind': 'Kind', 'col.code': 'Code',
    'col.first': 'First seen', 'col.last': 'Last seen', 'col.error': 'Error', 'col.id': 'ID',
    'col.message': 'Message id', 'col.status': 'Status', 'col.at': 'At', 'col.actor': 'Actor',
    'col.action': 'Action', 'col.note': 'Note', 'col.event': 'Event', 'col.target': 'Target', 'col.detail': 'Detail',
    'col.records': 'Records', 'col.requester': 'Requested by',
    'f.route': 'Route', 'f.kind': 'Kind', 'f.code': 'Code', 'f.text': 'Error text', 'f.from': 'From (RFC 3339)',
    'f.to': 'To (RFC 3339)', 'f.status': 'Status', 'f.apply': 'Filter', 'f.any': '(any)',
    'st.failed': 'failed', 'st.replayed': 'replayed', 'st.discarded': 'discarded',
    'open': 'Open', 'replay': 'Replay', 'replay.group': 'Replay the group', 'edit': 'Edit and replay',
    'edit.send': 'Replay the edited body', 'cancel': 'Cancel', 'discard': 'Discard', 'discard.reason': 'Why it is discarded (required)',
    'confirm.group': 'Replay the {n} messages of this group?', 'progress': 'Replayed {done}, {left} left',
    'done.replay': 'Message {id} replayed.', 'done.discard': 'Message {id} discarded.',
    'done.request': 'Request {id} created: another operator must approve it.',
    'done.group': '{n} messages replayed; {refused} refused.',
    'msg.title': 'Failed message {id}', 'msg.summary': 'Summary', 'msg.envelope': 'Envelope', 'msg.headers': 'Headers',
    'msg.body': 'Body', 'msg.replays': 'Replays and edits', 'msg.story': 'Where the message went',
    'msg.masked': 'Viewer role: every value of the body is masked (***).', 'msg.edited': 'edited',
    'msg.errorat': 'The error position is marked.',
    'requests.title': 'Approval requests', 'requests.none': 'No requests.', 'approve': 'Approve',
    'audit.title': 'Audit log', 'audit.ok': 'The hash chain verifies: {n} entries, head {head}.',
    'audit.bad': 'The hash chain does NOT verify at entry {seq}: {why}',
    'overview.title': 'Bus overview', 'overview.broker': 'RabbitMQ connection', 'overview.store': 'Failed-message store',
    'overview.inflight': 'In flight', 'overview.none': 'No figures yet.', 'up': 'up', 'down': 'down',
    'm.received': 'Received', 'm.delivered': 'Delivered', 'm.failed': 'Failed', 'm.retried': 'Retried',
    'error.unreachable': 'Cannot reach the lgsp server.', 'loading': 'Loading…',
  },
};

let lang = localStorage.getItem('lgsp.lang') === 'en' ? 'en' : 'vi';
let me = null;

function t(key, vars) {
  let s = T[lang][key] ?? T.en[key] ?? key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replaceAll('{' + k + '}', String(v));
  return s;
}

// An element with attributes and children (strings become text nodes, never markup).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function status(text, bad) {
  const s = document.getElementById('status');
  s.textContent = text || '';
  s.className = bad ? 'error' : '';
}

const token = () => sessionStorage.getItem('lgsp.token');

class ApiError extends Error {
  constructor(status, body) {
    super(`${status} ${body.code || ''}: ${body.message || ''}${body.hint ? ' (' + body.hint + ')' : ''}`);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: 'Bearer ' + token() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new Error(t('error.unreachable'));
  }
  const data = await resp.json().catch(() => ({}));
  // A token that stopped working (rotated, removed): back to the sign-in page, except
  // while signing in, where the form says why.
  if (resp.status === 401 && path !== '/admin/v1/me') { sessionStorage.removeItem('lgsp.token'); location.hash = '#/signin'; }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

function page(title, ...content) {
  const main = document.getElementById('main');
  main.replaceChildren(el('h1', { id: 'title' }, title), ...content.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  document.title = title + ' — lgsp';
  main.focus();
}

function table(columns, rows) {
  return el('div', { class: 'wrap' }, el('table', {},
    el('thead', {}, el('tr', {}, columns.map(([key, cls]) => el('th', { scope: 'col', class: cls }, t(key))))),
    el('tbody', {}, rows)));
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}

// ---- pages ----

function signin() {
  const input = el('input', { id: 'token', type: 'password', autocomplete: 'off', required: true });
  const msg = el('p', { class: 'error', id: 'signin-error' });
  const form = el('form', { class: 'login', onsubmit: async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem('lgsp.token', input.value.trim());
    try {
      me = await api('GET', '/admin/v1/me');
      location.hash = '#/groups';
    } catch (e) {
      sessionStorage.removeItem('lgsp.token');
      msg.textContent = e.message;
    }
  } },
  el('label', {}, t('signin.token'), input),
  el('p', {}, t('signin.hint')),
  el('button', { type: 'submit', id: 'signin' }, t('signin')), msg);
  page(t('signin.title'), form);
  input.focus();
}

function filtersForm(q, fields, target) {
  const inputs = {};
  const form = el('form', { class: 'filters', onsubmit: (ev) => {
    ev.preventDefault();
    const p = {};
    for (const [k, i] of Object.entries(inputs)) p[k] = i.value.trim();
    location.hash = target + query(p);
  } });
  for (const f of fields) {
    let i;
    if (f === 'status') {
      i = el('select', { name: f }, el('option', { value: '' }, t('f.any')),
        ['failed', 'replayed', 'discarded'].map((s) => el('option', { value: s, selected: q.get(f) === s }, t('st.' + s))));
    } else {
      i = el('input', { name: f, value: q.get(f) || '', size: f === 'text' ? 24 : 14 });
    }
    inputs[f] = i;
    form.append(el('label', {}, t('f.' + f), i));
  }
  form.append(el('button', { type: 'submit' }, t('f.apply')));
  return form;
}

async function groups(q) {
  const filters = ['route', 'kind', 'code', 'text', 'from', 'to', 'status'];
  const p = {};
  for (const f of filters) p[f] = q.get(f);
  const list = await api('GET', '/admin/v1/groups' + query(p));
  const rows = list.map((g) => {
    const link = '#/messages' + query({ route: g.route, kind: g.error_kind, code: g.error_code, status: 'failed' });
    const actions = el('td', {}, el('a', { href: link, class: 'open-group' }, t('open')));
    if (me && me.role === 'operator') {
      actions.append(' ', el('button', { type: 'button', class: 'secondary', onclick: () => replayGroup(g) }, t('replay.group')));
    }
    return el('tr', { class: 'group' },
      el('td', {}, String(g.count)), el('td', {}, g.route || '—'), el('td', {}, g.error_kind),
      el('td', {}, g.error_code), el('td', { class: 'wide' }, g.first_seen), el('td', { class: 'wide' }, g.last_seen),
      el('td', {}, g.sample_error), actions);
  });
  page(t('groups.title'), filtersForm(q, filters, '#/groups'),
    rows.length ? table([['col.count'], ['col.route'], ['col.kind'], ['col.code'], ['col.first', 'wide'], ['col.last', 'wide'], ['col.error'], ['open']], rows)
      : el('p', { id: 'empty' }, t('groups.none')),
    el('div', { id: 'progress' }));
}

async function replayGroup(g) {
  if (!confirm(t('confirm.group', { n: g.count }))) return;
  const box = document.getElementById('progress');
  const bar = el('progress', { max: g.count, value: 0 });
  const text = el('span', {});
  box.replaceChildren(bar, ' ', text);
  let done = 0, refused = 0;
  try {
    for (;;) {
      const r = await api('POST', '/admin/v1/bulk-replay', { group: g.key });
      if (r.request_id !== undefined) { status(t('done.request', { id: r.request_id })); return; }
      done += r.replayed.length; refused += r.refused.length;
      bar.value = done; text.textContent = t('progress', { done, left: r.remaining });
      if (r.remaining === 0 || r.replayed.length === 0) break;
    }
    status(t('done.group', { n: done, refused }));
    route();
  } catch (e) { status(e.message, true); }
}

async function messages(q) {
  const filters = ['route', 'kind', 'code', 'text', 'from', 'to', 'status'];
  const p = { limit: '50', cursor: q.get('cursor') };
  for (const f of filters) p[f] = q.get(f);
  const res = await api('GET', '/admin/v1/failed' + query(p));
  const rows = res.items.map((m) => el('tr', { class: 'failed-message' },
    el('td', {}, el('a', { href: '#/message/' + m.id }, String(m.id))), el('td', {}, m.message_id),
    el('td', {}, m.route || '—'), el('td', {}, el('span', { class: 'badge' }, t('st.' + m.status))),
    el('td', {}, m.error_kind + ' / ' + m.error_code), el('td', { class: 'wide' }, m.last_failed_at), el('td', {}, m.error)));
  const content = [filtersForm(q, filters, '#/messages')];
  content.push(rows.length ? table([['col.id'], ['col.message'], ['col.route'], ['col.status'], ['col.code'], ['col.last', 'wide'], ['col.error']], rows)
    : el('p', { id: 'empty' }, t('messages.none')));
  if (res.next_cursor) {
    const next = {};
    for (const f of filters) next[f] = q.get(f);
    next.cursor = String(res.next_cursor);
    content.push(el('p', {}, el('a', { href: '#/messages' + query(next) }, t('more'))));
  }
  page(t('messages.title'), ...content);
}

// The body as text: JSON and XML indented, unless the error names a position in it,
// which is then marked in the body as received.
function bodyView(m) {
  const pre = el('pre', { id: 'body' });
  const text = m.body;
  const at = /line (\d+), column (\d+)/.exec(m.error || '');
  if (at && m.body_encoding === 'text') {
    const lines = text.split('\n');
    const li = Number(at[1]) - 1, col = Number(at[2]) - 1;
    if (li >= 0 && li < lines.length) {
      let offset = 0;
      for (let i = 0; i < li; i++) offset += lines[i].length + 1;
      offset += Math.min(Math.max(col, 0), lines[li].length);
      const end = Math.min(offset + 1, text.length);
      pre.append(text.slice(0, offset), el('span', { class: 'mark', id: 'error-mark' }, text.slice(offset, end) || ' '), text.slice(end));
      return [el('p', {}, t('msg.errorat')), pre];
    }
  }
  pre.textContent = pretty(text, m.content_type);
  return [pre];
}

function pretty(text, contentType) {
  const trimmed = text.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try { return JSON.stringify(JSON.parse(trimmed), null, 2); } catch (e) { return text; }
  }
  if (trimmed.startsWith('<') && !/\n\s*</.test(trimmed)) {
    // One line of XML: one element per line, indented by depth.
    let depth = 0;
    return trimmed.replace(/>\s*</g, '>\n<').split('\n').map((line) => {
      if (/^<\//.test(line)) depth = Math.max(depth - 1, 0);
      const out = '  '.repeat(depth) + line;
      if (/^<[^!?\/][^>]*[^\/]>$/.test(line) && !/<\//.test(line)) depth += 1;
      return out;
    }).join('\n');
  }
  return text;
}

function dl(pairs) {
  return el('dl', {}, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => [el('dt', {}, t(k)), el('dd', {}, typeof v === 'string' ? v : JSON.stringify(v))]));
}

async function message(id) {
  const m = await api('GET', '/admin/v1/failed/' + encodeURIComponent(id));
  const operator = me && me.role === 'operator' && m.status === 'failed';
  const actions = el('div', { class: 'actions' });
  const editor = el('div', { id: 'editor' });
  if (operator) {
    actions.append(
      el('button', { type: 'button', id: 'replay', onclick: () => replayOne(m, undefined) }, t('replay')),
      el('button', { type: 'button', id: 'edit', class: 'secondary', onclick: () => edit(m, editor) }, t('edit')),
      el('button', { type: 'button', id: 'discard', class: 'danger', onclick: () => discard(m) }, t('discard')));
  }
  const replays = (m.history && m.history.length ? m.history : m.replays).map((r) => el('div', {},
    el('p', {}, `${r.at} — ${r.actor} → ${r.exchange || 'queue'} ${r.routing_key}`, r.edited ? el('span', { class: 'badge' }, t('msg.edited')) : null),
    r.diff ? el('pre', { class: 'diff' }, r.diff) : null));
  const story = el('div', { id: 'story' });
  page(t('msg.title', { id: m.id }),
    dl([['col.message', m.message_id], ['col.status', t('st.' + m.status)], ['col.route', m.route], ['col.kind', m.error_kind],
      ['col.code', m.error_code], ['col.first', m.first_failed_at], ['col.last', m.last_failed_at]]),
    el('p', { class: 'error', id: 'error' }, m.error),
    actions, editor,
    el('h2', {}, t('msg.body')), m.masked ? el('p', {}, t('msg.masked')) : null, ...bodyView(m),
    el('h2', {}, t('msg.envelope')), el('pre', {}, JSON.stringify(m.properties, null, 2)),
    el('h2', {}, t('msg.headers')), el('pre', {}, JSON.stringify(m.headers, null, 2)),
    replays.length ? el('h2', {}, t('msg.replays')) : null, ...replays,
    el('h2', {}, t('msg.story')), story);
  try {
    const s = await api('GET', '/admin/v1/messages/' + encodeURIComponent(m.message_id));
    story.append(table([['col.at'], ['col.event'], ['col.route'], ['col.target'], ['col.detail']],
      s.events.map((e) => el('tr', {}, el('td', {}, e.at), el('td', {}, e.event), el('td', {}, e.route || ''),
        el('td', {}, e.target || ''), el('td', {}, e.detail || '')))));
  } catch (e) { story.append(el('p', {}, e.message)); }
}

function edit(m, box) {
  const area = el('textarea', { id: 'edit-body', spellcheck: 'false' });
  area.value = m.body_encoding === 'text' ? m.body : '';
  box.replaceChildren(area, el('div', { class: 'actions' },
    el('button', { type: 'button', id: 'send-edit', onclick: () => replayOne(m, area.value) }, t('edit.send')),
    el('button', { type: 'button', class: 'secondary', onclick: () => box.replaceChildren() }, t('cancel'))));
  area.focus();
}

async function replayOne(m, body) {
  try {
    const r = await api('POST', `/admin/v1/failed/${m.id}/replay`, body === undefined ? {} : { body });
    if (r.request_id !== undefined) status(t('done.request', { id: r.request_id }));
    else status(t('done.replay', { id: m.id }));
    location.hash = '#/messages' + query({ route: m.route, status: 'failed' });
  } catch (e) { status(e.message, true); }
}

async function discard(m) {
  const reason = prompt(t('discard.reason'));
  if (!reason) return;
  try {
    const r = await api('POST', `/admin/v1/failed/${m.id}/discard`, { reason });
    status(r.request_id !== undefined ? t('done.request', { id: r.request_id }) : t('done.discard', { id: m.id }));
    location.hash = '#/groups';
  } catch (e) { status(e.message, true); }
}

async function requests() {
  const list = await api('GET', '/admin/v1/requests');
  const rows = list.map((r) => el('tr', { class: 'request' },
    el('td', {}, String(r.id)), el('td', {}, r.action), el('td', {}, r.requested_by), el('td', {}, r.status),
    el('td', {}, JSON.stringify(r.payload.id ?? r.payload.selection ?? r.payload.count ?? '')), el('td', {},
      me && me.role === 'operator' && r.status === 'pending' && r.requested_by !== me.name
        ? el('button', { type: 'button', onclick: async () => {
          try { await api('POST', `/admin/v1/requests/${r.id}/approve`, {}); route(); } catch (e) { status(e.message, true); }
        } }, t('approve')) : '')));
  page(t('requests.title'), rows.length
    ? table([['col.id'], ['col.action'], ['col.requester'], ['col.status'], ['col.records'], ['approve']], rows)
    : el('p', {}, t('requests.none')));
}

async function audit() {
  const [v, head] = await Promise.all([api('GET', '/admin/v1/audit/verify'), api('GET', '/admin/v1/audit/head')]);
  const after = Math.max(0, (head.seq || 0) - 200);
  const entries = await api('GET', '/admin/v1/audit' + query({ after: String(after), limit: '200' }));
  const verdict = v.ok
    ? el('p', { class: 'ok', id: 'verify' }, t('audit.ok', { n: v.entries, head: (v.head.hash || '').slice(0, 16) }))
    : el('p', { class: 'error', id: 'verify' }, t('audit.bad', { seq: v.first_bad && v.first_bad.seq, why: v.first_bad && v.first_bad.reason }));
  const rows = entries.slice().reverse().map((e) => el('tr', { class: 'audit-entry' },
    el('td', {}, String(e.seq)), el('td', {}, e.at), el('td', {}, e.actor), el('td', {}, e.action),
    el('td', {}, JSON.stringify(e.message_ids)), el('td', {}, e.note)));
  page(t('audit.title'), verdict,
    table([['col.id'], ['col.at'], ['col.actor'], ['col.action'], ['col.records'], ['col.note']], rows));
}

// /metrics (OpenMetrics text): the counters per route and the state gauges.
async function overview() {
  const text = await fetch('/metrics').then((r) => r.text()).catch(() => '');
  const per = {};
  let broker = null, store = null, inflight = null;
  for (const line of text.split('\n')) {
    const m = /^lgsp_(messages_(received|delivered|failed|retried)_total|broker_connected|store_up|messages_in_flight)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (!m) continue;
    const value = Number(m[4]);
    if (m[1] === 'broker_connected') { broker = value; continue; }
    if (m[1] === 'store_up') { store = value; continue; }
    if (m[1] === 'messages_in_flight') { inflight = value; continue; }
    const labels = m[3] || '';
    const key = (/route="([^"]*)"/.exec(labels) || /adapter="([^"]*)"/.exec(labels) || [null, ''])[1];
    per[key] = per[key] || { received: 0, delivered: 0, failed: 0, retried: 0 };
    per[key][m[2]] += value;
  }
  const state = (v) => v === null ? '—' : (v >= 1 ? t('up') : t('down'));
  const rows = Object.entries(per).sort().map(([k, c]) => el('tr', {},
    el('td', {}, k || '—'), el('td', {}, String(c.received)), el('td', {}, String(c.delivered)),
    el('td', {}, String(c.failed)), el('td', {}, String(c.retried))));
  page(t('overview.title'),
    dl([['overview.broker', state(broker)], ['overview.store', state(store)], ['overview.inflight', inflight === null ? '—' : String(inflight)]]),
    rows.length ? table([['col.route'], ['m.received'], ['m.delivered'], ['m.failed'], ['m.retried']], rows) : el('p', {}, t('overview.none')));
}

// ---- shell ----

function chrome() {
  document.documentElement.lang = lang;
  for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  document.getElementById('lang').textContent = t('lang.switch');
  const signed = Boolean(token());
  document.getElementById('nav').hidden = !signed;
  document.getElementById('signout').hidden = !signed;
  document.getElementById('who').textContent = me ? `${me.name} (${me.role})` : '';
}

async function route() {
  const [path, qs] = (location.hash.slice(1) || '/groups').split('?');
  const q = new URLSearchParams(qs || '');
  if (!token()) { me = null; chrome(); return signin(); }
  if (!me) {
    try { me = await api('GET', '/admin/v1/me'); } catch (e) { chrome(); return signin(); }
  }
  chrome();
  const parts = path.split('/').filter(Boolean);
  try {
    if (parts[0] === 'messages') await messages(q);
    else if (parts[0] === 'message' && parts[1]) await message(parts[1]);
    else if (parts[0] === 'requests') await requests();
    else if (parts[0] === 'audit') await audit();
    else if (parts[0] === 'overview') await overview();
    else if (parts[0] === 'signin') signin();
    else await groups(q);
  } catch (e) {
    page('lgsp', el('p', { class: 'error', id: 'page-error' }, e.message));
  }
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('lang').addEventListener('click', () => {
    lang = lang === 'vi' ? 'en' : 'vi';
    localStorage.setItem('lgsp.lang', lang);
    route();
  });
  document.getElementById('signout').addEventListener('click', () => {
    sessionStorage.removeItem('lgsp.token');
    me = null;
    location.hash = '#/signin';
    route();
  });
  window.addEventListener('hashchange', () => route());
  route();
});
