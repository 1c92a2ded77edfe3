/**
 * The scenarios, their parameters and the one entry point that runs a scenario under each requested
 * mechanism and assembles the report. The CLI and the tests both come through here.
 */
import * as os from 'node:os';
import type { LabParams, Report, Scenario, Trace } from './model';
import { parseMechanisms, plainVariant, unavailableReason } from './mechanisms';
import { partialRead } from './scenarios/partial-read';
import { arrivals } from './scenarios/arrivals';
import { writable } from './scenarios/writable';
import { acceptStorm } from './scenarios/accept-storm';
import { halfClose } from './scenarios/half-close';
import { oneshotRearm } from './scenarios/oneshot-rearm';
import { thunderingHerd } from './scenarios/thundering-herd';
import { interestChurn } from './scenarios/interest-churn';
import { stickyPackets } from './scenarios/sticky-packets';
import { multishotEnd } from './scenarios/multishot-end';
import { shortRead } from './scenarios/short-read';

export const SCENARIOS: readonly Scenario[] = [
  partialRead, arrivals, writable, acceptStorm, halfClose, oneshotRearm, thunderingHerd, interestChurn, stickyPackets,
  multishotEnd, shortRead,
];

/** Parameters every scenario takes. */
const COMMON: Partial<LabParams> = { stallMs: 50 };

/** What each parameter may be: integers in [min, max], or booleans. */
export const PARAM_RANGES: Readonly<Record<keyof LabParams, readonly [number, number] | 'boolean'>> = {
  bytes: [1, 16 * 1024 * 1024],
  chunk: [1, 64 * 1024],
  drain: 'boolean',
  rearm: 'boolean',
  connections: [1, 1000],
  workers: [1, 64],
  messages: [1, 1000],
  waits: [1, 1000],
  cycles: [1, 100],
  stallMs: [1, 10000],
  settleMs: [1, 10000],
  depth: [1, 64],
};

export function findScenario(name: string): Scenario {
  const scenario = SCENARIOS.find((s) => s.name === name);
  if (!scenario) {
    throw new RangeError(`Unknown scenario "${name}"; choose from ${SCENARIOS.map((s) => s.name).join(', ')}`);
  }
  return scenario;
}

/** The parameters `scenario` takes, with their defaults. */
export function defaultsOf(scenario: Scenario): Partial<LabParams> {
  return { ...scenario.defaults, ...COMMON };
}

export interface RunOptions {
  /** Mechanism names as `--mechanism` takes them; default: all. */
  mechanisms?: readonly string[];
  /** Overrides; a parameter the scenario does not take is a RangeError. */
  params?: Partial<LabParams>;
}

export async function runScenario(name: string, options: RunOptions = {}): Promise<Report> {
  const scenario = findScenario(name);
  const params = resolveParams(scenario, options.params ?? {});
  const mechanisms = parseMechanisms(options.mechanisms);
  const unavailable = mechanisms.map(unavailableReason).filter((r): r is string => r !== null);
  const runnable = mechanisms.filter((m) => unavailableReason(m) === null);
  const variants = scenario.variants?.(runnable) ?? runnable.map(plainVariant);
  const traces: Trace[] = [];
  for (const variant of variants) traces.push(await scenario.run(variant, params));
  const taken = defaultsOf(scenario);
  const parameters: Partial<LabParams> = {};
  for (const key of Object.keys(taken) as Array<keyof LabParams>) Object.assign(parameters, { [key]: params[key] });
  return {
    scenario: scenario.name,
    title: scenario.title,
    setup: scenario.setup(params),
    parameters,
    columns: scenario.columns,
    unit: scenario.unit ?? 'bytes',
    system: { platform: os.platform(), release: os.release(), node: process.version },
    traces,
    unavailable,
    conclusions: traces.length ? scenario.conclude(traces, params) : [],
  };
}

function resolveParams(scenario: Scenario, given: Partial<LabParams>): LabParams {
  const taken = defaultsOf(scenario);
  for (const [key, value] of Object.entries(given) as Array<[keyof LabParams, unknown]>) {
    if (value === undefined) continue;
    const range = PARAM_RANGES[key];
    if (!range) throw new RangeError(`Unknown parameter "${key}"`);
    if (!(key in taken)) throw new RangeError(`${scenario.name} does not take "${key}"`);
    if (range === 'boolean') {
      if (typeof value !== 'boolean') throw new TypeError(`"${key}" must be a boolean`);
    } else {
      if (typeof value !== 'number' || !Number.isInteger(value)) throw new TypeError(`"${key}" must be an integer`);
      if (value < range[0] || value > range[1]) {
        throw new RangeError(`"${key}" must be between ${range[0]} and ${range[1]}, got ${value}`);
      }
    }
  }
  // Parameters a scenario does not take keep harmless values so the type stays total.
  const filler: LabParams = {
    bytes: 0, chunk: 1, drain: false, rearm: false, connections: 0, workers: 0, messages: 0, waits: 0,
    cycles: 0, stallMs: 50, settleMs: 0, depth: 1,
  };
  const defined = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined));
  return { ...filler, ...taken, ...defined };
}
