// oidc-provider 9 ships no type declarations; test/support/oidc-provider.ts types the parts it uses.
declare module 'oidc-provider';
