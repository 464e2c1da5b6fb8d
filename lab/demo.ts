// `convoy lab up --demo`: a published web service a newcomer can curl.
import type { ControlApi } from '../proto/client';
import { labWait } from './services';
import type { LabState } from './state';

/** What a lab web server runs (busybox httpd): its page is "<hostname> <address>", so replicas tell apart. */
export const DEMO_HTTPD = 'mkdir -p /www && echo "$(hostname) $(hostname -i)" > /www/index.html && exec httpd -f -p 80 -h /www';
const DEMO_REPLICAS = 3;
const DEMO_PORT = 8080;
/** Bound on the demo's start: three image pulls and container starts. */
const DEMO_START_MS = 90_000;

/** Creates the demo service "web" from the lab's image and waits for its replicas; returns what to tell the operator. */
export async function runDemo(st: LabState, api: ControlApi, image: string): Promise<string> {
  await api.createService({
    spec: {
      name: 'web',
      replicas: DEMO_REPLICAS,
      container: { image, args: ['sh', '-c', DEMO_HTTPD] },
      resources: { limits: { memoryBytes: 32 * 1024 * 1024, nanoCpus: 2e8, pids: 64 } },
      endpoint: { ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: DEMO_PORT }] },
    },
  });
  await labWait(
    st,
    `${DEMO_REPLICAS} running replicas of web`,
    async () => {
      const { tasks } = await api.listTasks({ service: 'web' });
      return tasks.filter((t) => t.desiredState === 'RUNNING' && t.status?.state === 'RUNNING').length === DEMO_REPLICAS;
    },
    DEMO_START_MS,
  );
  return [
    '',
    `Demo service "web" runs ${DEMO_REPLICAS} busybox httpd containers spread over the hosts, published on port ${DEMO_PORT} of every host.`,
    'Try:',
    `  # convoy reaches ${st.manager} with the lab's admin bundle (~/.convoy/config.json, written by lab up)`,
    '  convoy service ps web',
    ...st.hosts.map((h) => `  busybox wget -O- http://${h.addr}:${DEMO_PORT}/      # answered by one of the replicas`),
    '  convoy service scale web=6',
    '  convoy node ls',
    '  convoy lab down           # remove everything',
    '',
  ].join('\n');
}
