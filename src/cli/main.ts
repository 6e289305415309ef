import 'reflect-metadata';

import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';

import { NestFactory } from '@nestjs/core';
import pino from 'pino';

import { AccountImportService } from '../access/account-import.service';
import { IMPORT_PRESETS, ImportPreset } from '../access/access.dto';
import { AppModule } from '../app.module';
import { prepareRuntime } from '../bootstrap';
import { runWithContext } from '../common/request-context';
import { loadSettings } from '../config/settings';
import { runMigrations } from '../database/data-source';
import { DemoSeeder } from '../demo/demo-seeder';
import { UsersService } from '../identity/users.service';
import { KevImportService } from '../vulnerabilities/kev-import.service';

const USAGE = `Usage: npm run cli -- <command> [options]

Commands:
  migrate              Apply pending database migrations
  seed                 Seed the demo organisation and bundled KEV catalog into an empty database
  kev-import <source>  Import a KEV catalog from a file path or an http(s) URL (JSON or CSV form)
  create-admin         Create a platform admin (e-mail and name as options, password on stdin)
  account-import       Import a system's accounts from a CSV export (see account-import --help)

Options:
  --allow-mass-withdrawal  (kev-import) accept a catalog that withdraws over 20% of active entries
  --email, --name          (create-admin) the new admin's e-mail address and display name
  --system, --file, --preset, --mode, --mapping, --allow-partial-errors  (account-import)
  -h, --help               Show help for a command

The database is DATABASE_URL, or the embedded PostgreSQL under DATA_DIR when it is unset.`;

const HELP: Record<string, string> = {
  migrate: `Usage: npm run migration:run
Applies pending migrations under an advisory lock, so it is safe beside running instances.`,
  seed: `Usage: npm run seed
Creates the demo organisation (real remote-management and deployment products) and imports the
bundled KEV snapshot, only when the database holds no provider and no KEV entry.`,
  'kev-import': `Usage: npm run kev:import -- <file-or-url> [--allow-mass-withdrawal]
Imports the CISA KEV catalog in its JSON or CSV form. The same catalog again changes nothing; a
newer one adds, updates and withdraws entries. A malformed file leaves the stored catalog as it was.`,
  'create-admin': `Usage: echo "$PASSWORD" | npm run cli -- create-admin --email a@example.com --name "A Admin"
Creates a user with the platform-admin role. The password (at least 12 characters) is read from
standard input so it never appears in the process list or shell history.`,
  'account-import': `Usage: npm run cli -- account-import --system <system id> --file <path.csv>
         --preset aws-iam-credential-report|generic [--mode full|partial]
         [--mapping externalId:login,name:display,privilege:role,mfa:mfa,lastUsed:last_login,enabled:active]
         [--allow-partial-errors]
Imports a system's accounts and reconciles the inventory. --mode full (the default) marks accounts
absent from the file removed; partial leaves them. Any invalid row rejects the whole file unless
--allow-partial-errors is given. Prints progress every 10,000 rows.`,
};

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      'allow-mass-withdrawal': { type: 'boolean' },
      email: { type: 'string' },
      name: { type: 'string' },
      system: { type: 'string' },
      file: { type: 'string' },
      preset: { type: 'string' },
      mode: { type: 'string' },
      mapping: { type: 'string' },
      'allow-partial-errors': { type: 'boolean' },
    },
  });
  const [command, ...rest] = positionals;
  if (command === undefined || !(command in HELP)) {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined && values.help ? 0 : 2;
  }
  if (values.help) {
    process.stdout.write(`${HELP[command]}\n`);
    return 0;
  }

  // Operator commands never start workers or seed implicitly.
  const settings = { ...loadSettings(), role: 'api' as const, seedDemo: false };
  const logger = pino({ level: settings.logLevel === 'silent' ? 'silent' : 'warn' });
  const progress = (message: string): void => void process.stdout.write(`${message}\n`);

  if (command === 'migrate') {
    const { runtime, embedded } = await prepareRuntime(
      { ...settings, migrationsRun: false },
      logger,
    );
    try {
      const applied = await runMigrations(runtime.databaseUrl);
      progress(
        applied.length > 0
          ? `Applied: ${applied.join(', ')}`
          : 'Nothing to apply: the schema is up to date',
      );
    } finally {
      await embedded?.stop();
    }
    return 0;
  }

  if (command === 'kev-import' && rest.length !== 1) {
    process.stderr.write(`kev-import takes one file path or URL\n${HELP['kev-import']}\n`);
    return 2;
  }

  const { runtime, embedded } = await prepareRuntime(settings, logger);
  const context = await NestFactory.createApplicationContext(AppModule.forRoot(runtime), {
    logger: false,
  });
  try {
    const cliContext = {
      requestId: `cli-${Date.now()}`,
      clientAddress: undefined,
      actor: `cli:${userInfo().username}`,
      channel: 'cli' as const,
    };
    return await runWithContext(cliContext, async () => {
      if (command === 'create-admin') {
        if (!values.email || !values.name) {
          process.stderr.write(`create-admin needs --email and --name\n${HELP['create-admin']}\n`);
          return 2;
        }
        const password = await readStdin();
        if (password.length < 12) {
          process.stderr.write('The password on standard input must have at least 12 characters\n');
          return 2;
        }
        const admin = await context
          .get(UsersService)
          .create({ email: values.email, name: values.name, password, roles: ['platform-admin'] });
        progress(`Created platform admin ${admin.email} (${admin.id})`);
        return 0;
      }

      if (command === 'seed') {
        progress('Seeding the demo organisation…');
        const result = await context.get(DemoSeeder).seed();
        progress(
          result.seeded
            ? `Seeded ${result.systems} systems, ${result.kevEntries} KEV entries, ${result.findings} findings`
            : `Skipped: ${result.reason}`,
        );
        return 0;
      }

      if (command === 'account-import') {
        const preset = values.preset as ImportPreset;
        const mode = values.mode ?? 'full';
        if (!values.system || !values.file || !IMPORT_PRESETS.includes(preset)) {
          process.stderr.write(
            `account-import needs --system, --file and --preset\n${HELP['account-import']}\n`,
          );
          return 2;
        }
        if (mode !== 'full' && mode !== 'partial') {
          process.stderr.write(`--mode must be full or partial (got ${mode})\n`);
          return 2;
        }
        const report = await context
          .get(AccountImportService)
          .importAccounts(values.system, createReadStream(values.file), {
            preset,
            mode,
            mapping: values.mapping,
            allowPartialErrors: values['allow-partial-errors'] ?? false,
            source: `file ${values.file}`,
            progress,
          });
        for (const row of report.rows.filter((result) => result.outcome === 'rejected')) {
          progress(`  line ${row.line} rejected: ${row.reason}`);
        }
        progress(
          `Imported ${report.rowsRead} rows: ${report.created} created, ${report.updated} updated, ` +
            `${report.unchanged} unchanged, ${report.rejected} rejected, ${report.removed} removed`,
        );
        return 0;
      }

      const source = rest[0];
      const imports = context.get(KevImportService);
      const options = { allowMassWithdrawal: values['allow-mass-withdrawal'] ?? false, progress };
      const report = /^https?:\/\//i.test(source)
        ? await imports.importUrl(source, options)
        : await imports.importContent(await readFile(source, 'utf8'), `file ${source}`, options);
      progress(
        `Imported ${report.entries} entries: ${report.added} added, ${report.updated} updated, ` +
          `${report.withdrawn} withdrawn, ${report.unchanged} unchanged; ${report.newFindings} new finding(s)`,
      );
      return 0;
    });
  } finally {
    await context.close();
    await embedded?.stop();
  }
}

main(process.argv.slice(2))
  .then((code) => process.exit(code))
  .catch((error: unknown) => {
    const details = (
      error as {
        details?: {
          problems?: { message: string }[];
          rejected?: { line: number; reason: string }[];
        };
      }
    ).details;
    process.stderr.write(`Failed: ${error instanceof Error ? error.message : String(error)}\n`);
    for (const problem of details?.problems ?? []) {
      process.stderr.write(`  - ${problem.message}\n`);
    }
    for (const row of details?.rejected ?? []) {
      process.stderr.write(`  - line ${row.line}: ${row.reason}\n`);
    }
    process.exit(1);
  });
