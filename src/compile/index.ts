/** The compiler's public surface. */
export { compile, createCompiler, type Compiler, type ProxyRef, type SecurityInput } from './compiler.js';
export { simulate, toRouteRequest, type Simulation, type SimulateRequest, type SimulatedCluster, type Outcome } from './simulate.js';
export { dumpSnapshot } from './dump.js';
export { affectsProxy, affectedHosts, snapshotHosts } from './affects.js';
export { DEFAULTS, DEFAULT_ROWS, type DefaultRow } from './defaults.js';
export { hashOf } from './hash.js';
