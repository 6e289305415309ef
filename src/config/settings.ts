import { resolve } from 'node:path';

import { ROLES as USER_ROLES, type Role } from '../identity/permissions';

export type ProcessRole = 'api' | 'worker' | 'both';

/** Start-up settings read once from the environment and validated before anything starts. */
export interface Settings {
  host: string;
  port: number;
  /** Absent means: start the embedded PostgreSQL under `dataDir`. */
  databaseUrl: string | undefined;
  dataDir: string;
  embeddedPostgresPort: number;
  /** With `databaseUrl` set, migrations run at start-up only when this is true. */
  migrationsRun: boolean;
  redisUrl: string;
  /** Prefix of every BullMQ key, so several deployments or test runs can share one Redis. */
  queuePrefix: string;
  role: ProcessRole;
  logLevel: string;
  /** Maximum JSON request body, in bytes. */
  bodyLimitBytes: number;
  seedDemo: boolean;
  kevUrl: string | undefined;
  /** Cron pattern (UTC) for the KEV refresh; only used when `kevUrl` is set. */
  kevRefreshCron: string;
  /** When true, a KEV due date earlier than the criticality SLA becomes the binding due date. */
  kevDueDateBinding: boolean;
  /** Largest KEV catalog accepted by upload or download, in bytes. */
  kevMaxBytes: number;
  /** Largest evidence file accepted for a tool approval evaluation, in bytes. */
  evidenceMaxBytes: number;
  /** Cron pattern (UTC) of the sweep that moves approvals near expiry to re-approval due. */
  reapprovalCron: string;
  /** Cron pattern (UTC) of the job that opens review campaigns whose period has begun. */
  reviewOpenCron: string;
  /** Cron pattern (UTC) of the sweep that closes review campaigns past their due date and grace. */
  reviewCloseCron: string;
  /** Days to carry out a de-provisioning task opened by a review. */
  deprovisionSlaDays: number;
  /** Longest time an end date may lie ahead for admin grants and provider accounts, in days. */
  grantMaxDays: number;
  /** Longest a risk acceptance of an access finding may last, in days. */
  riskAcceptanceMaxDays: number;
  /** Days to fix a known exploited vulnerability, counted from first match, by system criticality. */
  patchSlaDays: Record<'critical' | 'high' | 'medium' | 'low', number>;
  /** Lifetime of an access token, in minutes; a refresh token renews it. */
  accessTokenTtlMinutes: number;
  /** Lifetime of a sign-in session (and its refresh token), in hours. */
  sessionTtlHours: number;
  /** First platform admin, created at start-up when the database has no user. */
  bootstrapAdmin: { email: string; password: string } | undefined;
  /** SMTP server for e-mail notifications; unset turns the e-mail channel off. */
  smtpUrl: string | undefined;
  mailFrom: string;
  /** Attempts per e-mail or webhook delivery before it goes to the dead letter list. */
  notifyMaxAttempts: number;
  /** Wait before the second attempt, in milliseconds; it doubles for each further attempt. */
  notifyRetryBaseMs: number;
  /** Cron pattern (UTC) of the daily digest of KEV findings nearing or past their due date. */
  kevDigestCron: string;
  /** Findings due within this many days go into the digest. */
  kevDigestLeadDays: number;
  /** Review reminders, used for policies and users that have no plan or schedule of their own. */
  reviewReminders: ReviewReminderSettings;
  /** Roles whose holders must sign in with a second factor. */
  mfaRequiredRoles: string[];
  /** Origins allowed to call the API from a browser; empty allows none. */
  corsOrigins: string[];
  /** Sign-in and token requests per minute from one client address, across all instances. */
  authRateLimitPerMinute: number;
  /** OpenID Connect sign-in settings, undefined when OIDC_ISSUER_URL is unset. */
  oidc: OidcSettings | undefined;
  keys: KeySettings;
}

/** Relying-party settings for sign-in through an OpenID Connect provider. */
export interface OidcSettings {
  /** Issuer identifier; discovery reads `<issuer>/.well-known/openid-configuration`. */
  issuerUrl: string;
  clientId: string;
  /** Undefined for a public client, which then authenticates by PKCE alone. */
  clientSecret: string | undefined;
  /** Absolute URL of GET /api/auth/oidc/callback as registered at the provider. */
  redirectUri: string;
  scopes: string;
  /** Claim (ID token or userinfo) whose string or string array lists the user's groups. */
  groupsClaim: string;
  /** Roles granted per group value. */
  roleMap: Record<string, Role[]>;
  /** Role given to users whose groups map to no role. Undefined rejects those users. */
  defaultRole: Role | undefined;
  /** True only for an http issuer on a loopback host, which openid-client otherwise rejects. */
  allowInsecureIssuer: boolean;
}

export interface ReviewReminderSettings {
  /** Days before a campaign's due date at which each reviewer gets a digest, such as [7, 3, 1]. */
  stepsDays: number[];
  /** Days between digests once the due date has passed, until the campaign closes. */
  overdueCadenceDays: number;
  /** Days past the due date at which each escalation level fires (level 1 first). */
  escalationDays: number[];
  /** ISO weekdays (1 = Monday, 7 = Sunday) on which digests go out, in the reviewer's time zone. */
  digestWeekdays: number[];
  /** Local time of day (HH:MM) at which digests go out. */
  digestTime: string;
  /** Cron pattern (UTC) of the job that rebuilds missing jobs and escalates overdue items. */
  reconcileCron: string;
}

/** Key material as given in the environment (base64); missing keys are filled in by the key store. */
export interface KeySettings {
  fingerprintKey: string | undefined;
  secretsKey: string | undefined;
  evidenceSigningKey: string | undefined;
}

export class ConfigurationError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigurationError';
  }
}

type Env = Record<string, string | undefined>;

const OIDC_VARIABLES = [
  'OIDC_CLIENT_ID',
  'OIDC_CLIENT_SECRET',
  'OIDC_REDIRECT_URI',
  'OIDC_SCOPES',
  'OIDC_GROUPS_CLAIM',
  'OIDC_ROLE_MAP',
  'OIDC_DEFAULT_ROLE',
];
const LOOPBACK_HOSTS = ['127.0.0.1', '[::1]', 'localhost'];

function isRole(value: string): value is Role {
  return (USER_ROLES as readonly string[]).includes(value);
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const ROLES: ProcessRole[] = ['api', 'worker', 'both'];

/**
 * Reads and validates every setting. One ConfigurationError lists each bad variable with the
 * expected form, so an operator fixes them all in one pass.
 */
export function loadSettings(env: Env = process.env): Settings {
  const problems: string[] = [];
  const reader = new EnvReader(env, problems);

  const settings: Settings = {
    host: reader.string('HOST', '127.0.0.1'),
    port: reader.integer('PORT', 3000, 0, 65535),
    databaseUrl: reader.url('DATABASE_URL', ['postgres:', 'postgresql:']),
    dataDir: resolve(reader.string('DATA_DIR', './.data')),
    embeddedPostgresPort: reader.integer('EMBEDDED_PG_PORT', 54329, 1, 65535),
    migrationsRun: reader.boolean('MIGRATIONS_RUN', false),
    redisUrl: reader.url('REDIS_URL', ['redis:', 'rediss:']) ?? 'redis://127.0.0.1:6379',
    queuePrefix: reader.pattern(
      'QUEUE_PREFIX',
      'gov',
      /^[A-Za-z0-9_-]{1,40}$/,
      '1-40 letters, digits, _ or -',
    ),
    role: reader.choice('PROCESS_ROLE', 'both', ROLES),
    logLevel: reader.choice('LOG_LEVEL', 'info', LOG_LEVELS),
    bodyLimitBytes: reader.integer('BODY_LIMIT_BYTES', 1_048_576, 1024, 100 * 1_048_576),
    seedDemo: reader.boolean('SEED_DEMO', true),
    kevUrl: reader.url('KEV_URL', ['http:', 'https:', 'file:']),
    kevRefreshCron: reader.pattern(
      'KEV_REFRESH_CRON',
      '17 5 * * *',
      /^(\S+\s+){4,5}\S+$/,
      'a cron pattern of five fields (six with seconds) such as "17 5 * * *"',
    ),
    kevDueDateBinding: reader.boolean('KEV_DUE_DATE_BINDING', false),
    kevMaxBytes: reader.integer('KEV_MAX_BYTES', 50 * 1_048_576, 1024, 1024 * 1_048_576),
    evidenceMaxBytes: reader.integer('EVIDENCE_MAX_BYTES', 10 * 1_048_576, 1, 1024 * 1_048_576),
    reviewOpenCron: reader.pattern(
      'REVIEW_OPEN_CRON',
      '7 * * * *',
      /^(\S+\s+){4,5}\S+$/,
      'a cron pattern of five fields (six with seconds) such as "7 * * * *"',
    ),
    reviewCloseCron: reader.pattern(
      'REVIEW_CLOSE_CRON',
      '*/15 * * * *',
      /^(\S+\s+){4,5}\S+$/,
      'a cron pattern of five fields (six with seconds) such as "*/15 * * * *"',
    ),
    deprovisionSlaDays: reader.integer('DEPROVISION_SLA_DAYS', 7, 1, 365),
    grantMaxDays: reader.integer('GRANT_MAX_DAYS', 365, 1, 3650),
    riskAcceptanceMaxDays: reader.integer('RISK_ACCEPTANCE_MAX_DAYS', 365, 1, 3650),
    reapprovalCron: reader.pattern(
      'REAPPROVAL_CRON',
      '23 * * * *',
      /^(\S+\s+){4,5}\S+$/,
      'a cron pattern of five fields (six with seconds) such as "23 * * * *"',
    ),
    patchSlaDays: {
      critical: reader.integer('PATCH_SLA_CRITICAL_DAYS', 7, 1, 3650),
      high: reader.integer('PATCH_SLA_HIGH_DAYS', 14, 1, 3650),
      medium: reader.integer('PATCH_SLA_MEDIUM_DAYS', 30, 1, 3650),
      low: reader.integer('PATCH_SLA_LOW_DAYS', 90, 1, 3650),
    },
    accessTokenTtlMinutes: reader.integer('ACCESS_TOKEN_TTL_MINUTES', 15, 1, 1440),
    sessionTtlHours: reader.integer('SESSION_TTL_HOURS', 12, 1, 24 * 30),
    bootstrapAdmin: reader.bootstrapAdmin(),
    mfaRequiredRoles: reader.list(
      'MFA_REQUIRED_ROLES',
      ['platform-admin', 'security-approver', 'system-owner'],
      ['platform-admin', 'security-approver', 'system-owner', 'manager', 'requester', 'auditor'],
    ),
    corsOrigins: reader.origins('CORS_ORIGINS'),
    authRateLimitPerMinute: reader.integer('AUTH_RATE_LIMIT_PER_MINUTE', 20, 1, 100_000),
    smtpUrl: reader.url('SMTP_URL', ['smtp:', 'smtps:']),
    mailFrom: reader.pattern(
      'MAIL_FROM',
      'governance@localhost',
      /^[^@\s]+@[^@\s]+$/,
      'an e-mail address',
    ),
    notifyMaxAttempts: reader.integer('NOTIFY_MAX_ATTEMPTS', 5, 1, 50),
    notifyRetryBaseMs: reader.integer('NOTIFY_RETRY_BASE_MS', 30_000, 10, 86_400_000),
    kevDigestCron: reader.pattern(
      'KEV_DIGEST_CRON',
      '0 7 * * *',
      /^(\S+\s+){4,5}\S+$/,
      'a cron pattern of five fields (six with seconds) such as "0 7 * * *"',
    ),
    kevDigestLeadDays: reader.integer('KEV_DIGEST_LEAD_DAYS', 7, 0, 365),
    oidc: reader.oidc(),
    reviewReminders: {
      stepsDays: reader.integerList('REVIEW_REMINDER_STEPS_DAYS', [7, 3, 1], 1, 365),
      overdueCadenceDays: reader.integer('REVIEW_OVERDUE_CADENCE_DAYS', 2, 1, 365),
      escalationDays: reader.integerList('REVIEW_ESCALATION_DAYS', [3, 7], 0, 365),
      digestWeekdays: reader.integerList('REVIEW_DIGEST_WEEKDAYS', [1, 2, 3, 4, 5, 6, 7], 1, 7),
      digestTime: reader.pattern(
        'REVIEW_DIGEST_TIME',
        '09:00',
        /^([01]\d|2[0-3]):[0-5]\d$/,
        'a local time HH:MM such as "09:00"',
      ),
      reconcileCron: reader.pattern(
        'REVIEW_REMINDERS_RECONCILE_CRON',
        '*/15 * * * *',
        /^(\S+\s+){4,5}\S+$/,
        'a cron pattern of five fields (six with seconds) such as "*/15 * * * *"',
      ),
    },
    keys: {
      fingerprintKey: reader.base64Key('FINGERPRINT_KEY'),
      secretsKey: reader.base64Key('SECRETS_KEY'),
      evidenceSigningKey: reader.base64Key('EVIDENCE_SIGNING_KEY'),
    },
  };

  if (problems.length > 0) {
    throw new ConfigurationError(problems);
  }
  return settings;
}

export function runsApi(settings: Settings): boolean {
  return settings.role === 'api' || settings.role === 'both';
}

export function runsWorker(settings: Settings): boolean {
  return settings.role === 'worker' || settings.role === 'both';
}

class EnvReader {
  constructor(
    private readonly env: Env,
    private readonly problems: string[],
  ) {}

  private raw(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      this.problems.push(`${name} must be a whole number from ${min} to ${max} (got "${value}")`);
      return fallback;
    }
    return Number(value);
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.raw(name)?.toLowerCase();
    if (value === undefined) return fallback;
    if (value === 'true' || value === '1') return true;
    if (value === 'false' || value === '0') return false;
    this.problems.push(`${name} must be true or false (got "${value}")`);
    return fallback;
  }

  choice<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!allowed.includes(value as T)) {
      this.problems.push(`${name} must be one of ${allowed.join(', ')} (got "${value}")`);
      return fallback;
    }
    return value as T;
  }

  pattern(name: string, fallback: string, pattern: RegExp, expected: string): string {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!pattern.test(value)) {
      this.problems.push(`${name} must be ${expected} (got "${value}")`);
      return fallback;
    }
    return value;
  }

  /** Validates a URL without echoing it, because URLs here may carry passwords. */
  url(name: string, protocols: string[]): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      this.problems.push(
        `${name} must be a URL such as ${protocols[0]}//host:port/… (the value is not a URL)`,
      );
      return undefined;
    }
    if (!protocols.includes(parsed.protocol)) {
      this.problems.push(`${name} must use ${protocols.join(' or ')} (got "${parsed.protocol}")`);
      return undefined;
    }
    if (parsed.port !== '' && Number(parsed.port) === 0) {
      this.problems.push(`${name} must name a port from 1 to 65535`);
      return undefined;
    }
    return value;
  }

  /** BOOTSTRAP_ADMIN_EMAIL and BOOTSTRAP_ADMIN_PASSWORD go together; the password is never echoed. */
  bootstrapAdmin(): { email: string; password: string } | undefined {
    const email = this.raw('BOOTSTRAP_ADMIN_EMAIL');
    const password = this.env.BOOTSTRAP_ADMIN_PASSWORD;
    if (email === undefined && password === undefined) return undefined;
    if (email === undefined || !/^[^@\s]+@[^@\s]+$/.test(email)) {
      this.problems.push(
        'BOOTSTRAP_ADMIN_EMAIL must be an e-mail address when BOOTSTRAP_ADMIN_PASSWORD is set',
      );
      return undefined;
    }
    if (password === undefined || password.length < 12) {
      this.problems.push('BOOTSTRAP_ADMIN_PASSWORD must have at least 12 characters');
      return undefined;
    }
    return { email, password };
  }

  /** Reads a comma-separated list whose items must come from `allowed`; an empty value is an empty list. */
  list(name: string, fallback: string[], allowed: string[]): string[] {
    const value = this.env[name];
    if (value === undefined) return fallback;
    const items = value
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
    const unknown = items.filter((item) => !allowed.includes(item));
    if (unknown.length > 0) {
      this.problems.push(
        `${name} may list only ${allowed.join(', ')} (got "${unknown.join(', ')}")`,
      );
      return fallback;
    }
    return items;
  }

  /** Reads a comma-separated list of distinct whole numbers from `min` to `max`, at least one. */
  integerList(name: string, fallback: number[], min: number, max: number): number[] {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const items = value.split(',').map((item) => item.trim());
    const valid = items.every(
      (item) => /^\d+$/.test(item) && Number(item) >= min && Number(item) <= max,
    );
    if (!valid || new Set(items.map(Number)).size !== items.length) {
      this.problems.push(
        `${name} must list distinct whole numbers from ${min} to ${max}, separated by commas (got "${value}")`,
      );
      return fallback;
    }
    return items.map(Number);
  }

  /** Reads comma-separated browser origins such as https://governance.example.com. */
  origins(name: string): string[] {
    const origins = (this.env[name] ?? '')
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
    for (const origin of origins) {
      if (!/^https?:\/\/[^/\s]+$/.test(origin)) {
        this.problems.push(
          `${name} must list origins such as https://governance.example.com (got "${origin}")`,
        );
        return [];
      }
    }
    return origins;
  }

  /**
   * Reads the OIDC_* variables. They are all optional, but once OIDC_ISSUER_URL is set the client id
   * and redirect URI must be set too. OIDC_CLIENT_SECRET is never echoed.
   */
  oidc(): OidcSettings | undefined {
    const issuer = this.raw('OIDC_ISSUER_URL');
    if (issuer === undefined) {
      const stray = OIDC_VARIABLES.filter((name) => this.raw(name) !== undefined);
      if (stray.length > 0) {
        this.problems.push(
          `${stray.join(', ')} ${stray.length === 1 ? 'is' : 'are'} set but OIDC_ISSUER_URL is not; set it to turn on OpenID Connect sign-in or unset the others`,
        );
      }
      return undefined;
    }
    const problemsBefore = this.problems.length;

    const issuerUrl = this.url('OIDC_ISSUER_URL', ['https:', 'http:']);
    let allowInsecureIssuer = false;
    if (issuerUrl !== undefined && new URL(issuerUrl).protocol === 'http:') {
      allowInsecureIssuer = LOOPBACK_HOSTS.includes(new URL(issuerUrl).hostname);
      if (!allowInsecureIssuer) {
        this.problems.push(
          'OIDC_ISSUER_URL must use https: (plain http is accepted only for 127.0.0.1, ::1 and localhost)',
        );
      }
    }

    const clientId = this.raw('OIDC_CLIENT_ID');
    if (clientId === undefined) {
      this.problems.push('OIDC_CLIENT_ID must be set when OIDC_ISSUER_URL is set');
    }
    const redirectUri = this.url('OIDC_REDIRECT_URI', ['https:', 'http:']);
    if (redirectUri === undefined && this.raw('OIDC_REDIRECT_URI') === undefined) {
      this.problems.push(
        'OIDC_REDIRECT_URI must be set when OIDC_ISSUER_URL is set, e.g. https://governance.example.com/api/auth/oidc/callback',
      );
    }

    const scopes = this.string('OIDC_SCOPES', 'openid email profile').split(/\s+/);
    if (!scopes.includes('openid')) {
      this.problems.push(`OIDC_SCOPES must include openid (got "${scopes.join(' ')}")`);
    }
    const groupsClaim = this.pattern(
      'OIDC_GROUPS_CLAIM',
      'groups',
      /^[A-Za-z0-9_:./-]{1,100}$/,
      'a claim name of 1-100 letters, digits or _:./-',
    );
    const roleMap = this.roleMap('OIDC_ROLE_MAP');
    const defaultRole = this.raw('OIDC_DEFAULT_ROLE');
    if (defaultRole !== undefined && !isRole(defaultRole)) {
      this.problems.push(
        `OIDC_DEFAULT_ROLE must be one of ${USER_ROLES.join(', ')} (got "${defaultRole}")`,
      );
    }

    if (this.problems.length > problemsBefore) return undefined;
    return {
      issuerUrl: issuerUrl!,
      clientId: clientId!,
      clientSecret: this.raw('OIDC_CLIENT_SECRET'),
      redirectUri: redirectUri!,
      scopes: scopes.join(' '),
      groupsClaim,
      roleMap,
      defaultRole: defaultRole as Role | undefined,
      allowInsecureIssuer,
    };
  }

  /**
   * Reads comma-separated `group=role` pairs. A group may appear more than once to get several
   * roles, and the last `=` separates group and role.
   * NOTE: a group value that contains a comma (such as an LDAP DN) cannot be mapped.
   */
  private roleMap(name: string): Record<string, Role[]> {
    const map: Record<string, Role[]> = {};
    const entries = (this.raw(name) ?? '')
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry !== '');
    for (const entry of entries) {
      const separator = entry.lastIndexOf('=');
      const group = separator > 0 ? entry.slice(0, separator).trim() : '';
      const role = separator > 0 ? entry.slice(separator + 1).trim() : '';
      if (group === '' || !isRole(role)) {
        this.problems.push(
          `${name} entry "${entry}" must be group=role with a role from ${USER_ROLES.join(', ')}`,
        );
        continue;
      }
      map[group] = [...new Set([...(map[group] ?? []), role])];
    }
    return map;
  }

  /** Reads a 32-byte key in base64 and never echoes it. */
  base64Key(name: string): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value) || Buffer.from(value, 'base64').length !== 32) {
      this.problems.push(`${name} must be 32 random bytes in base64 (44 characters)`);
      return undefined;
    }
    return value;
  }
}
