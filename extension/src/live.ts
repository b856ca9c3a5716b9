/**
 * Following one job live: the service's server-sent events (through the server
 * extension), and polling with backoff when the stream cannot be had or keeps breaking.
 */
import { isTerminal, IJob } from './jobs';
import { eventsUrl, getJob } from './request';

const EVENTS = ['status', 'started', 'cell_started', 'cell_finished', 'finished'];

/** Polling delays: start quick (a short job ends in seconds), back off to spare the server. */
export function nextDelay(delay: number, min = 1000, max = 15000): number {
  return Math.min(max, Math.max(min, Math.round(delay * 1.5)));
}

export class JobWatch {
  private source: EventSource | null = null;
  private timer: number | null = null;
  private errors = 0;
  private delay = 1000;
  private stopped = false;

  constructor(
    readonly id: string,
    private readonly onEvent: (event: Record<string, any>) => void,
    private readonly onEnd: (job: IJob) => void = () => undefined
  ) {}

  /** Whether the watch fell back to polling. */
  get polling(): boolean {
    return this.source === null && this.timer !== null;
  }

  start(): void {
    this.stopped = false;
    if (typeof EventSource === 'undefined') {
      return this.poll();
    }
    const source = new EventSource(eventsUrl(this.id), { withCredentials: true });
    this.source = source;
    for (const name of EVENTS) {
      source.addEventListener(name, (e: MessageEvent) => {
        this.errors = 0;
        let event: Record<string, any>;
        try {
          event = JSON.parse(e.data);
        } catch {
          return;
        }
        this.onEvent(event);
        if (name === 'status' && event.job && isTerminal(event.job.status)) {
          this.stop();
          this.onEnd(event.job as IJob);
        }
      });
    }
    source.onerror = () => {
      // EventSource reconnects by itself; after a few failures in a row, poll instead
      if (++this.errors >= 3 || source.readyState === EventSource.CLOSED) {
        source.close();
        this.source = null;
        this.poll();
      }
    };
  }

  private poll(): void {
    if (this.stopped) {
      return;
    }
    this.timer = window.setTimeout(async () => {
      try {
        const job = await getJob(this.id);
        this.onEvent({ event: 'status', job });
        if (isTerminal(job.status)) {
          this.stop();
          this.onEnd(job);
          return;
        }
      } catch (e) {
        // the service may be restarting: keep trying, more slowly
      }
      this.delay = nextDelay(this.delay);
      this.poll();
    }, this.delay);
  }

  stop(): void {
    this.stopped = true;
    this.source?.close();
    this.source = null;
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
      this.timer = null;
    }
  }
}
