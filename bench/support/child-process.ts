import { fork } from 'node:child_process';

/**
 * Runs a compiled bench module in a new Node.js process and resolves with the first message it
 * sends over IPC. A measurement runs in its own process when its peak RSS matters, because the
 * peak of the long-lived runner cannot be reset. The child gets SIGKILL after `timeoutMs`, and the
 * promise rejects when the child exits without a message or with a non-zero code.
 */
export function runChild<T>(modulePath: string, args: string[], timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const child = fork(modulePath, args, { stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    let message: { value: T } | undefined;
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      // Keeps only the tail, which contains the error of a failed child.
      stderr = (stderr + chunk).slice(-8000);
    });
    child.once('message', (value) => {
      message = { value: value as T };
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    // 'close' fires after stderr has ended, so the message below carries all of it.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0 && message !== undefined) {
        resolve(message.value);
        return;
      }
      const exit = signal === null ? `with code ${code}` : `on signal ${signal}`;
      const timeout = timedOut ? ` after timing out at ${timeoutMs / 1000} s` : '';
      const noMessage = message === undefined ? ', without sending a result' : '';
      reject(
        new Error(
          `Child ${modulePath} ${args[0] ?? ''} exited ${exit}${timeout}${noMessage}\n${stderr}`,
        ),
      );
    });
  });
}

/** Sends the child's result to the parent and exits once it is delivered. */
export function sendResultAndExit(result: unknown): void {
  if (process.send === undefined) {
    console.log(JSON.stringify(result, null, 2));
    process.exit(0);
  }
  process.send(result, () => process.exit(0));
}
