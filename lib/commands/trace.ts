import { Command } from 'commander';

/** Registers `iomux trace` (being built; see the open issues). */
export function register(program: Command): void {
  void program;
}
