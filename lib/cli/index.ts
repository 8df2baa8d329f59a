// The CLI's building blocks, for programs that want to add a method or drive the CLI in-process.
export { main, runCli, exitCodeFor, exitCodes, type CliIO } from './main.js';
export { registerMethod, getMethod, methodNames, type MethodSpec, type InputSpec, type InputValue, type MethodProgress, type RunContext, type DataNames, type AxisNames } from './registry.js';
export { UsageError, kebab, camel, parseArgs, validateFlags, describeFlags } from './flags.js';
export { writeResultDir, resultJson, type ResultJson, type ResultMeta, type ArrayRef, type ArrayNamer, type ResultWriteOptions } from './output.js';
