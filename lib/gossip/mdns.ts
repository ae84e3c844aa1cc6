/**
 * mDNS discovery (multicast-dns): advertise `<node>._walnut._udp.local` with
 * the gossip port (SRV) and `node=<id>`, `v=1`, `k=<key fingerprint>` (TXT),
 * and browse for the same service. Only peers announcing this cluster's key
 * fingerprint are reported. The peer's address is the source address of its
 * mDNS answer.
 */
import type { MulticastDNS } from 'multicast-dns';

export const SERVICE = '_walnut._udp.local';

export interface MdnsFound {
  node: string;
  address: string;
  port: number;
}

export interface MdnsOptions {
  node: string;
  port: number;
  /** key fingerprint announced and required from peers */
  fingerprint: string;
  /** the interface address to use (the daemon's bind address), or undefined for the default */
  interfaceAddress?: string;
  /** how often to ask (ms); the first queries go out at start, after 1 s and 3 s */
  browseMs: number;
  onFound: (peer: MdnsFound) => void;
  onWarning?: (message: string) => void;
}

/** A running advertiser and browser; `close()` stops it. */
export interface MdnsDiscovery {
  query(): void;
  close(): Promise<void>;
}

/**
 * Start advertising and browsing.
 * @returns the running discovery
 * @throws when the multicast socket cannot be opened
 * @example const d = await startMdns({ node: 'pi-01', port: 9999, fingerprint, browseMs: 30000, onFound: (p) => add(p) })
 */
export async function startMdns(o: MdnsOptions): Promise<MdnsDiscovery> {
  const { default: makeMdns } = (await import('multicast-dns')) as unknown as { default: (opts: object) => MulticastDNS };
  const instance = `${o.node}.${SERVICE}`;
  // Bound to the wildcard address: a socket bound to a unicast address gets no multicast.
  const mdns = makeMdns({ interface: o.interfaceAddress, bind: '0.0.0.0', reuseAddr: true, loopback: true });
  await new Promise<void>((resolve, reject) => {
    mdns.once('ready', () => resolve());
    mdns.once('error', reject);
  });
  mdns.on('error', (err: Error) => o.onWarning?.(`mdns: ${err.message}`));
  mdns.on('warning', (err: Error) => o.onWarning?.(`mdns: ${err.message}`));

  const records = () => [
    { name: SERVICE, type: 'PTR' as const, ttl: 120, data: instance },
    { name: instance, type: 'SRV' as const, ttl: 120, data: { port: o.port, target: `${o.node}.local`, priority: 0, weight: 0 } },
    { name: instance, type: 'TXT' as const, ttl: 120, data: [`node=${o.node}`, 'v=1', `k=${o.fingerprint}`] },
  ];
  const announce = () => mdns.respond({ answers: records() });

  mdns.on('query', (q) => {
    if (q.questions.some((x) => (x.name === SERVICE && (x.type === 'PTR' || (x.type as string) === 'ANY')) || x.name === instance)) announce();
  });
  mdns.on('response', (res, rinfo) => {
    const all = [...(res.answers ?? []), ...(res.additionals ?? [])];
    for (const a of all) {
      if (a.type !== 'SRV' || !a.name.endsWith(`.${SERVICE}`) || a.name === instance) continue;
      const txt = all.find((t) => t.type === 'TXT' && t.name === a.name) as { data?: unknown } | undefined;
      const fields = new Map<string, string>();
      for (const item of (txt?.data as Array<Buffer | string> | undefined) ?? []) {
        const s = item.toString();
        const eq = s.indexOf('=');
        if (eq > 0) fields.set(s.slice(0, eq), s.slice(eq + 1));
      }
      const node = fields.get('node');
      if (!node || node === o.node || fields.get('k') !== o.fingerprint) continue;
      const port = (a.data as { port: number }).port;
      o.onFound({ node, address: rinfo.address, port });
    }
  });

  const query = () => mdns.query({ questions: [{ name: SERVICE, type: 'PTR' }] });
  announce();
  query();
  const timers = [setTimeout(query, 1000), setTimeout(query, 3000), setTimeout(announce, 1500)];
  const every = setInterval(query, Math.max(1000, o.browseMs));
  for (const t of [...timers, every]) t.unref();
  return {
    query,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        clearInterval(every);
        // Goodbye: the same records with TTL 0.
        mdns.respond({ answers: records().map((r) => ({ ...r, ttl: 0 })) }, () => mdns.destroy(() => resolve()));
      }),
  };
}
