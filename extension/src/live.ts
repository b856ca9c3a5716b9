/**
 * Following one job live: the service's server-sent events (through the server
 * extension), and polling with backoff when the stream cannot be had or keeps breaking.
 */
import { isTerminal, IJob } from './jobs';
import { eventsUrl, getJob } from './request';

const EVENTS = ['status', 'started', 'cell_started', 'cell_finished', 'finished', 'metric'];

/** Polling delays: start quick (a short job ends in seconds), back off to spare the server. */
export function nextDelay(delay: number, min = 1000, max = 15000): number {
  return Math.min(max, Math.max(min, Math.round(delay * 1.5)));
}

/**
 * How a watch's updates arrive: `connecting` until the event stream opens, then `events`;
 * `polling` once it gave the stream up (and for good: it does not try the stream again).
 */
export type UpdatesVia = 'connecting' | 'events' | 'polling';

export class JobWatch {
  private source: EventSource | null = null;
  private timer: number | null = null;
  private errors = 0;
  private delay = 1000;
  private stopped = false;
  private _via: UpdatesVia = 'connecting';

  /**
   * @param onEvent  each event, and whether it came over the stream (`events`) or a poll (`polling`)
   * @param onEnd    the job once it has ended
   * @param onVia    when the way updates arrive changes (the stream opened, or polling took over)
   */
  constructor(
    readonly id: string,
    private readonly onEvent: (event: Record<string, any>, via: 'events' | 'polling') => void,
    private readonly onEnd: (job: IJob) => void = () => undefined,
    private readonly onVia: (via: UpdatesVia) => void = () => undefined
  ) {}

  /** Whether the watch fell back to polling. */
  get polling(): boolean {
    return this._via === 'polling';
  }

  /** How updates arrive now. */
  get via(): UpdatesVia {
    return this._via;
  }

  private setVia(via: UpdatesVia): void {
    if (via !== this._via) {
      this._via = via;
      this.onVia(via);
    }
  }

  start(): void {
    this.stopped = false;
    if (typeof EventSource === 'undefined') {
      return this.poll();
    }
    // same origin: the session cookie goes along; the XSRF token goes in the query (see eventsUrl)
    const source = new EventSource(eventsUrl(this.id), { withCredentials: true });
    this.source = source;
    source.onopen = () => this.setVia('events');
    for (const name of EVENTS) {
      source.addEventListener(name, (e: MessageEvent) => {
        this.errors = 0;
        let event: Record<string, any>;
        try {
          event = JSON.parse(e.data);
        } catch {
          return;
        }
        this.setVia('events');
        this.onEvent(event, 'events');
        if (name === 'status' && event.job && isTerminal(event.job.status)) {
          this.stop();
          this.onEnd(event.job as IJob);
        }
      });
    }
    source.onerror = () => {
      // EventSource reconnects by itself; after a few failures in a row, poll instead
      if (this.stopped) {
        return;
      }
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
    this.setVia('polling');
    this.timer = window.setTimeout(async () => {
      try {
        const job = await getJob(this.id);
        if (this.stopped) {
          return;
        }
        this.onEvent({ event: 'status', job }, 'polling');
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
