import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

export interface LoggerSettings {
  level: string;
  format: 'json' | 'console';
}

/** A pino logger writing JSON lines, or coloured lines for people when format is 'console'. */
export function createLogger(settings: LoggerSettings, destination?: NodeJS.WritableStream): Logger {
  const options: LoggerOptions = {
    level: settings.level,
    base: { service: 'callfs' },
    redact: { paths: ['req.headers.authorization', '*.authorization', '*.api_key', '*.secret'], censor: '[redacted]' },
  };
  if (settings.format === 'console' && destination === undefined) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:standard' } } });
  }
  return destination === undefined ? pino(options) : pino(options, destination);
}

/** A logger that drops everything (tests, admin commands). */
export function createSilentLogger(): Logger {
  return pino({ level: 'silent' });
}
