import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';

/**
 * GNU time, which writes the user and system CPU seconds (`%U %S`) and the peak RSS in KiB (`%M`)
 * of the command it runs to a file.
 */
const GNU_TIME = '/usr/bin/time';

/** Figures of one finished psql process. */
export interface PsqlResult {
  /** From the spawn to the exit of psql, so it includes starting psql and connecting. */
  wallMs: number;
  /** CPU time (user and system) of the psql process, in ms, at GNU time's 10 ms resolution. */
  cpuMs: number;
  /** Peak resident set size of the psql process, in KiB. */
  maxRssKb: number;
  stdout: string;
}

/** A running psql process. */
export interface PsqlRun {
  /** The standard input of psql, which `\copy … FROM pstdin` reads. */
  stdin: Writable;
  finished: Promise<PsqlResult>;
}

/**
 * Starts `psql -c <command>` on `databaseUrl` under GNU time, with ON_ERROR_STOP and no psqlrc.
 * The server cancels the statement after `timeoutMs` (statement_timeout), and GNU time gets
 * SIGKILL 10 s later if it is still running. `finished` rejects when psql exits with an error.
 */
export function startPsql(databaseUrl: string, command: string, timeoutMs: number): PsqlRun {
  const timeFile = join(tmpdir(), `gov-bench-psql-${randomBytes(6).toString('hex')}.time`);
  const args = ['-f', '%U %S %M', '-o', timeFile, 'psql', '-X', '-v', 'ON_ERROR_STOP=1'];
  args.push('-d', databaseUrl, '-c', command);
  const startedAt = performance.now();
  const child = spawn(GNU_TIME, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, PGOPTIONS: `-c statement_timeout=${timeoutMs}` },
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 10_000);

  const finished = new Promise<PsqlResult>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`Starting ${GNU_TIME} psql failed: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      const wallMs = performance.now() - startedAt;
      clearTimeout(timer);
      let timeOutput = '';
      try {
        timeOutput = readFileSync(timeFile, 'utf8');
      } catch {
        // A killed GNU time leaves no figures, and the error below reports the exit instead.
      }
      rmSync(timeFile, { force: true });
      if (code !== 0) {
        const exit = signal === null ? `with code ${code}` : `on signal ${signal}`;
        reject(new Error(`psql -c "${command}" exited ${exit}: ${stderr.trim()}`));
        return;
      }
      const figures = (timeOutput.trim().split('\n').pop() ?? '').split(' ').map(Number);
      const [userSeconds, systemSeconds, maxRssKb] = figures;
      if (figures.length !== 3 || figures.some((figure) => !Number.isFinite(figure))) {
        reject(new Error(`${GNU_TIME} wrote no figures for psql (file content: "${timeOutput}")`));
        return;
      }
      const cpuMs = (userSeconds + systemSeconds) * 1000;
      resolve({ wallMs, cpuMs, maxRssKb, stdout });
    });
  });
  return { stdin: child.stdin, finished };
}

/** Reads the row count from the `COPY <rows>` line that psql prints after a COPY. */
export function copiedRows(stdout: string): number {
  const match = /^COPY (\d+)$/m.exec(stdout);
  if (match === null) throw new Error(`psql printed no "COPY <rows>" line: ${stdout.trim()}`);
  return Number(match[1]);
}
