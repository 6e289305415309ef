import { randomBytes, timingSafeEqual } from 'node:crypto';

import { Inject, Injectable, Logger } from '@nestjs/common';
import type * as OpenIdClient from 'openid-client';
import { DataSource } from 'typeorm';

import { Clock } from '../common/clock';
import { DomainError } from '../common/errors';
import { returnedRows } from '../common/transactions';
import { SETTINGS } from '../config/runtime';
import type { OidcSettings, Settings } from '../config/settings';
import { TokenPair, tokenHash } from './auth.service';
import { OidcAccountsService, ProviderIdentity } from './oidc-accounts.service';

/** Cookie that binds a started sign-in to the browser that started it (against login CSRF). */
export const OIDC_BROWSER_COOKIE = 'oidc_login';
/** How long a started sign-in waits for its callback. */
export const OIDC_ATTEMPT_TTL_SECONDS = 600;
/** Time limit of each request to the provider, in seconds. */
const PROVIDER_TIMEOUT_SECONDS = 10;

type OpenIdClientModule = typeof OpenIdClient;

let openIdClient: Promise<OpenIdClientModule> | undefined;

/** Loads openid-client 6, which ships as an ES module only, from this CommonJS build. */
function loadOpenIdClient(): Promise<OpenIdClientModule> {
  openIdClient ??= import('openid-client');
  return openIdClient;
}

export interface OidcStart {
  authorizationUrl: string;
  /** Value of the OIDC_BROWSER_COOKIE cookie to set on the redirect. */
  browserBinding: string;
}

export type OidcSignIn = TokenPair & { returnTo: string | null };

interface LoginAttempt {
  browser_hash: Buffer;
  code_verifier: string;
  nonce: string;
  return_to: string | null;
  expires_at: Date;
}

/**
 * OpenID Connect sign-in as a relying party: authorization code flow with PKCE (S256), state and
 * nonce. Each started sign-in is a PostgreSQL row keyed by the state's hash and deleted by the first
 * callback that names it, so a state works once and only until it expires.
 */
@Injectable()
export class OidcService {
  private readonly logger = new Logger('Oidc');
  private configuration: Promise<OpenIdClient.Configuration> | undefined;

  constructor(
    private readonly dataSource: DataSource,
    private readonly clock: Clock,
    private readonly accounts: OidcAccountsService,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  /** Returns the provider's configuration, discovered on first use. A failed discovery is retried. */
  async providerConfiguration(): Promise<OpenIdClient.Configuration> {
    const settings = this.requireSettings();
    this.configuration ??= this.discover(settings).catch((error: unknown) => {
      this.configuration = undefined;
      throw error;
    });
    return this.configuration;
  }

  async start(returnTo: string | undefined): Promise<OidcStart> {
    const settings = this.requireSettings();
    const config = await this.providerConfiguration();
    const client = await loadOpenIdClient();

    const state = client.randomState();
    const nonce = client.randomNonce();
    const codeVerifier = client.randomPKCECodeVerifier();
    const browserBinding = randomBytes(32).toString('base64url');
    const now = this.clock.now();
    await this.dataSource.query(`DELETE FROM oidc_login_attempts WHERE expires_at <= $1`, [now]);
    await this.dataSource.query(
      `INSERT INTO oidc_login_attempts
         (state_hash, browser_hash, code_verifier, nonce, return_to, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [
        tokenHash(state),
        tokenHash(browserBinding),
        codeVerifier,
        nonce,
        returnTo ?? null,
        now,
        new Date(now.getTime() + OIDC_ATTEMPT_TTL_SECONDS * 1000),
      ],
    );

    const authorizationUrl = client.buildAuthorizationUrl(config, {
      redirect_uri: settings.redirectUri,
      scope: settings.scopes,
      state,
      nonce,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    });
    return { authorizationUrl: authorizationUrl.href, browserBinding };
  }

  /**
   * Completes a sign-in from the provider's redirect: spends the state, redeems the code, validates
   * the ID token and opens a session.
   *
   * @param query the callback's raw query string, without the leading `?`
   * @param browserBinding the OIDC_BROWSER_COOKIE cookie sent with the callback
   */
  async callback(query: string, browserBinding: string | undefined): Promise<OidcSignIn> {
    const settings = this.requireSettings();
    const state = new URLSearchParams(query).get('state');
    const attempt = state ? await this.spendAttempt(state) : undefined;
    if (!state || !attempt || attempt.expires_at <= this.clock.now()) {
      throw new DomainError(
        400,
        'AUTH.OIDC_STATE_INVALID',
        'The sign-in state is missing, unknown, expired or already used; start again at GET /api/auth/oidc/start',
      );
    }
    const binding = browserBinding ? tokenHash(browserBinding) : undefined;
    if (!binding || !timingSafeEqual(binding, attempt.browser_hash)) {
      throw new DomainError(
        400,
        'AUTH.OIDC_STATE_MISMATCH',
        `The sign-in was not started in this browser (the ${OIDC_BROWSER_COOKIE} cookie is missing or does not match); start again at GET /api/auth/oidc/start`,
      );
    }

    const callbackUrl = new URL(settings.redirectUri);
    callbackUrl.search = query;
    const identity = await this.redeem(settings, callbackUrl, state, attempt);
    const session = await this.accounts.signIn(identity);
    return { ...session, returnTo: attempt.return_to };
  }

  private requireSettings(): OidcSettings {
    if (!this.settings.oidc) {
      throw new DomainError(
        404,
        'AUTH.OIDC_DISABLED',
        'OpenID Connect sign-in is not configured on this server (OIDC_ISSUER_URL is unset)',
      );
    }
    return this.settings.oidc;
  }

  private async discover(settings: OidcSettings): Promise<OpenIdClient.Configuration> {
    const client = await loadOpenIdClient();
    const authentication = settings.clientSecret
      ? client.ClientSecretBasic(settings.clientSecret)
      : client.None();
    try {
      return await client.discovery(
        new URL(settings.issuerUrl),
        settings.clientId,
        undefined,
        authentication,
        {
          // openid-client rejects plain http, so the settings allow it only for a loopback issuer.
          execute: settings.allowInsecureIssuer ? [client.allowInsecureRequests] : [],
          timeout: PROVIDER_TIMEOUT_SECONDS,
        },
      );
    } catch (error) {
      this.logger.error(
        { err: error, issuer: settings.issuerUrl },
        'OpenID Connect discovery failed',
      );
      throw new DomainError(
        503,
        'AUTH.OIDC_PROVIDER_UNAVAILABLE',
        `The OpenID Connect provider ${settings.issuerUrl} could not be reached or sent invalid metadata; try again later`,
      );
    }
  }

  /** Deletes and returns the attempt of a state, so a second callback with it finds nothing. */
  private async spendAttempt(state: string): Promise<LoginAttempt | undefined> {
    const result = await this.dataSource.query<LoginAttempt[] | [LoginAttempt[], number]>(
      `DELETE FROM oidc_login_attempts WHERE state_hash = $1
       RETURNING browser_hash, code_verifier, nonce, return_to, expires_at`,
      [tokenHash(state)],
    );
    return returnedRows(result)[0];
  }

  /** Exchanges the code and reads the identity from the validated ID token and userinfo. */
  private async redeem(
    settings: OidcSettings,
    callbackUrl: URL,
    state: string,
    attempt: LoginAttempt,
  ): Promise<ProviderIdentity> {
    const client = await loadOpenIdClient();
    const config = await this.providerConfiguration();
    try {
      const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: attempt.code_verifier,
        expectedState: state,
        expectedNonce: attempt.nonce,
        idTokenExpected: true,
      });
      const idToken = tokens.claims()!;
      const userInfo = config.serverMetadata().userinfo_endpoint
        ? await client.fetchUserInfo(config, tokens.access_token, idToken.sub)
        : {};
      // The ID token wins where both carry a claim, because its signature was checked.
      return readIdentity(settings, { ...userInfo, ...idToken });
    } catch (error) {
      throw this.providerError(client, error);
    }
  }

  /** Maps an openid-client failure to a client error and logs it; anything else is rethrown. */
  private providerError(client: OpenIdClientModule, error: unknown): unknown {
    if (error instanceof DomainError) return error;
    if (error instanceof client.AuthorizationResponseError) {
      this.logger.warn({ error: error.error }, 'The provider returned an authorization error');
      return new DomainError(
        401,
        'AUTH.OIDC_DENIED',
        `The provider did not sign you in (${error.error}); start again at GET /api/auth/oidc/start`,
        { error: error.error, description: error.error_description },
      );
    }
    if (error instanceof client.ResponseBodyError) {
      this.logger.warn({ error: error.error }, 'The provider rejected the authorization code');
      return new DomainError(
        401,
        'AUTH.OIDC_CODE_REJECTED',
        `The provider rejected the authorization code (${error.error}); start again at GET /api/auth/oidc/start`,
        { error: error.error },
      );
    }
    if (error instanceof client.ClientError) {
      // openid-client 6 wraps the detailed oauth4webapi error, whose own cause names the claim.
      const detail = error.cause instanceof Error ? error.cause : error;
      const claim = (detail.cause as { claim?: unknown } | undefined)?.claim;
      this.logger.warn(
        { code: error.code, claim, reason: detail.message },
        "Rejected the provider's token response",
      );
      return new DomainError(
        401,
        'AUTH.OIDC_RESPONSE_INVALID',
        `The provider's response failed validation: ${detail.message}`,
        { reason: error.code, claim: typeof claim === 'string' ? claim : undefined },
      );
    }
    this.logger.error({ err: error }, 'The request to the OpenID Connect provider failed');
    return new DomainError(
      502,
      'AUTH.OIDC_PROVIDER_UNAVAILABLE',
      'The OpenID Connect provider could not be reached or sent an invalid response; try again later',
    );
  }
}

/** Reads the claims sign-in needs, rejecting a subject or issuer too long to store. */
function readIdentity(settings: OidcSettings, claims: Record<string, unknown>): ProviderIdentity {
  const issuer = String(claims.iss);
  const subject = String(claims.sub);
  if (issuer.length > 500 || subject.length > 255) {
    throw new DomainError(
      403,
      'AUTH.OIDC_SUBJECT_INVALID',
      'The ID token names an issuer longer than 500 or a subject longer than 255 characters',
    );
  }
  return {
    issuer,
    subject,
    email: typeof claims.email === 'string' ? claims.email : undefined,
    // Some providers send the boolean as a string.
    emailVerified: claims.email_verified === true || claims.email_verified === 'true',
    name: typeof claims.name === 'string' ? claims.name : undefined,
    groups: stringList(claims[settings.groupsClaim]),
    amr: stringList(claims.amr),
  };
}

/** Accepts a claim given as one string or an array of strings; other values count as none. */
function stringList(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) {
    return value.filter((item): item is string => typeof item === 'string');
  }
  return [];
}
