// Structured logs: one JSON object per line on stderr, dotted keys
// (`node.id`, `task.id`, `service.name`). Level from CONVOY_LOG_LEVEL
// (debug|info|warn|error, default info).
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, string | number | boolean | undefined | null>;

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function threshold(): number {
  const v = (process.env.CONVOY_LOG_LEVEL ?? 'info') as LogLevel;
  return LEVELS[v] ?? LEVELS.info;
}

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

export function createLogger(component: string, base: LogFields = {}): Logger {
  const min = threshold();
  const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (LEVELS[level] < min) return;
    const rec: Record<string, unknown> = { time: new Date().toISOString(), level, component, msg, ...base, ...fields };
    process.stderr.write(JSON.stringify(rec) + '\n');
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (f) => createLogger(component, { ...base, ...f }),
  };
}

/** A logger that drops everything (tests, benchmarks). */
export const nullLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return nullLogger;
  },
};

export function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
