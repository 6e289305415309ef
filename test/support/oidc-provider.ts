import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';

/** A person known to the test provider, with the claims it releases. */
export interface ProviderAccount {
  sub: string;
  email: string;
  email_verified: boolean;
  name: string;
  groups: string[];
  /** Authentication methods the provider reports in the ID token's `amr` claim. */
  amr?: string[];
}

export interface ProviderClient {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
}

/** The parts of oidc-provider 9 (which ships no types) that the tests use. */
interface OidcProvider {
  callback(): (request: IncomingMessage, response: ServerResponse) => void;
  interactionDetails(
    request: IncomingMessage,
    response: ServerResponse,
  ): Promise<{
    prompt: { name: string };
    params: Record<string, unknown>;
    session?: { accountId: string };
  }>;
  interactionFinished(
    request: IncomingMessage,
    response: ServerResponse,
    result: object,
    options: { mergeWithLastSubmission: boolean },
  ): Promise<void>;
  Grant: new (properties: { accountId: string; clientId: string }) => {
    addOIDCScope(scope: string): void;
    save(): Promise<string>;
  };
}
type ProviderConstructor = new (issuer: string, configuration: object) => OidcProvider;

/**
 * A real OpenID Connect provider (oidc-provider) on 127.0.0.1 with a free port. Instead of login
 * and consent pages, its interaction URL signs in `nextLogin` at once and grants every requested
 * scope, so a test drives the whole flow with plain HTTP requests.
 */
export class TestProvider {
  readonly accounts = new Map<string, ProviderAccount>();
  nextLogin = '';

  private constructor(
    private readonly server: Server,
    readonly issuer: string,
  ) {}

  static async start(clients: ProviderClient[]): Promise<TestProvider> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const testProvider = new TestProvider(server, issuer);

    const { default: Provider } = (await import('oidc-provider')) as {
      default: ProviderConstructor;
    };
    const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const provider = new Provider(issuer, {
      clients,
      jwks: { keys: [{ ...signingKey.export({ format: 'jwk' }), kid: 'test', use: 'sig' }] },
      cookies: { keys: [randomBytes(16).toString('hex')] },
      // The ID token carries only the claims of the openid scope, so amr is listed there.
      claims: {
        openid: ['sub', 'amr'],
        email: ['email', 'email_verified'],
        profile: ['name'],
        groups: ['groups'],
      },
      features: { devInteractions: { enabled: false } },
      interactions: {
        url: (_context: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}`,
      },
      findAccount: (_context: unknown, sub: string) => {
        const account = testProvider.accounts.get(sub);
        if (!account) return undefined;
        return {
          accountId: sub,
          claims: () => {
            const { amr: _amr, ...claims } = account;
            return claims;
          },
        };
      },
    });

    const handle = provider.callback();
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      if (request.url?.startsWith('/interaction/')) {
        testProvider.interact(provider, request, response).catch((error: unknown) => {
          response.writeHead(500).end(String(error));
        });
      } else {
        handle(request, response);
      }
    });
    return testProvider;
  }

  addAccount(account: ProviderAccount): void {
    this.accounts.set(account.sub, account);
  }

  private async interact(
    provider: OidcProvider,
    request: IncomingMessage,
    response: ServerResponse,
  ): Promise<void> {
    const details = await provider.interactionDetails(request, response);
    if (details.prompt.name === 'login') {
      const account = this.accounts.get(this.nextLogin);
      if (!account) throw new Error(`No provider account ${this.nextLogin}`);
      await provider.interactionFinished(
        request,
        response,
        { login: { accountId: account.sub, amr: account.amr } },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    const grant = new provider.Grant({
      accountId: details.session!.accountId,
      clientId: String(details.params.client_id),
    });
    grant.addOIDCScope(String(details.params.scope));
    await provider.interactionFinished(
      request,
      response,
      { consent: { grantId: await grant.save() } },
      { mergeWithLastSubmission: true },
    );
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * Follows redirects from an authorization URL the way a browser would, keeping cookies, until the
 * provider redirects to `redirectUri`, and returns that URL (with code and state). Each call is a
 * new browser, so the provider requires a login every time.
 */
export async function authorizeInBrowser(
  authorizationUrl: string,
  redirectUri: string,
): Promise<URL> {
  const cookies = new Map<string, string>();
  let url = new URL(authorizationUrl);
  for (let hop = 0; hop < 10; hop++) {
    const response = await fetch(url, {
      redirect: 'manual',
      headers: { cookie: [...cookies].map(([name, value]) => `${name}=${value}`).join('; ') },
    });
    for (const header of response.headers.getSetCookie()) {
      const [pair] = header.split(';');
      const separator = pair.indexOf('=');
      cookies.set(pair.slice(0, separator).trim(), pair.slice(separator + 1).trim());
    }
    const location = response.headers.get('location');
    if (!location) {
      throw new Error(
        `The provider stopped at ${url.href} with ${response.status}: ${await response.text()}`,
      );
    }
    const next = new URL(location, url);
    if (next.href.startsWith(redirectUri)) return next;
    url = next;
  }
  throw new Error(`More than 10 redirects from ${authorizationUrl}`);
}
