/** A user-facing failure: message to stderr, exit code 1 (2 for usage errors). Light on purpose: every command imports it. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}
