import { h, clear, t, api, can, when, badge, toast } from '../lib.js';

export async function nodesPage(main, _m, live) {
  const d = await api('/node/search', { page_size: 500 });
  if (!live()) return;
  const admin = can('admin');
  clear(main, h('h1', t('nav.nodes')),
    d.list.length === 0 ? h('p.empty', t('nodes.none')) :
      h('div.scroll', h('table',
        h('thead', h('tr', ['f.state', 'f.host', 'f.ip', 'f.uuid', 'f.labels', 'f.jobs', 'dash.running', 'f.version', 'f.up', 'f.down'].map((k) => h('th', t(k))), admin ? h('th', t('actions')) : null)),
        h('tbody', d.list.map((n) => h('tr', { 'data-uuid': n.uuid },
          h('td', badge(n.alive ? 'alive' : 'dead'), n.drain ? [' ', badge(n.drain)] : null), h('td', n.hostname), h('td', n.ip), h('td', h('code', n.uuid)),
          h('td.labels', Object.entries(n.labels || {}).map(([k, v]) => h('code.label', k + '=' + v))),
          h('td', h('a', { href: 'jobs?node=' + encodeURIComponent(n.uuid) }, String(n.job_count))),
          h('td', String(n.running)), h('td', n.version), h('td', when(n.up * 1000)), h('td', when(n.down * 1000)),
          admin ? h('td.actions', h('button', {
            type: 'button', 'data-act': n.drain ? 'undrain' : 'drain', onclick: async () => {
              if (!n.drain && !confirm(t('confirm.drain', { n: n.hostname || n.uuid }))) return;
              try { await api(n.drain ? '/node/undrain' : '/node/drain', { uuid: n.uuid }); toast(t('saved')); nodesPage(main, _m, live); } catch (e) { toast(e.message, true); }
            },
          }, t(n.drain ? 'a.undrain' : 'a.drain')), n.alive ? null : h('button.danger', {
            type: 'button', onclick: async () => {
              if (!confirm(t('confirm.node'))) return;
              try { await api('/node/del', { uuid: n.uuid }); toast(t('deleted')); nodesPage(main, _m, live); } catch (e) { toast(e.message, true); }
            },
          }, t('a.delete'))) : null))))));
}
