#!/usr/bin/env node
// A small local AWS Step Functions endpoint (AWS JSON 1.0 protocol) on top of the
// aws-local-stepfunctions engine, so code that calls the real SDK (sfn.StartExecution,
// DescribeExecution, ...) works unchanged against `make dev`.
//
//   node tools/sfn-local/server.mjs CONFIG.json        (or SFN_LOCAL_CONFIG=CONFIG.json)
//
// CONFIG.json:
//   {
//     "port": 0,                        // 0 = any free port (the listening line names it)
//     "host": "127.0.0.1",
//     "region": "us-east-1", "accountId": "123456789012",
//     "retryIntervalsZero": false,      // true: every Retry pause is 0 ms (tests)
//     "lambdaEndpoint": "http://...",   // optional; default: AWS_ENDPOINT_URL_LAMBDA / AWS_ENDPOINT_URL
//     "defaultTaskTimeoutSeconds": 900, // Task states without TimeoutSeconds (the engine's own default is 60)
//     "parentPid": 1234,                // optional; exit when that process is gone
//     "stateMachines": [
//       {"name": "upgrade", "arn": "arn:aws:states:...:stateMachine:upgrade",
//        "definitionPath": "statemachines/upgrade.asl.json",
//        "substitutions": {"PlanValidateFunctionArn": "arn:aws:lambda:...:function:x"}}
//     ]
//   }
//
// Modules are resolved with require(), so NODE_PATH may point at the pinned
// node_modules outside the repo ($TENANTFLOW_TOOLS/node/node_modules).
//
// Lambda Task states are NOT run by the engine's built-in Lambda client: it lets the
// AWS SDK retry 5xx responses on its own and names service errors "ServiceException"
// instead of "Lambda.ServiceException", so Retry/Catch on Lambda.* never match, and its
// Cause is "Type: message" instead of the Lambda error payload. Every Lambda Task gets a
// local handler (taskResourceLocalHandlers) that invokes the function the way Step
// Functions does and records the Lambda/Task history events.

// aws-local-stepfunctions 3 calls Promise.withResolvers (Node >= 22) in every Task state.
// It is only called at run time, and the engine is loaded below with require(), after this.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new this((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const EXIT_STARTUP = 2;
const EXIT_ADDR_IN_USE = 98; // the Go wrapper retries on another port

function log(line) {
  process.stdout.write(`${line}\n`);
}

function die(message, code = EXIT_STARTUP) {
  process.stderr.write(`sfn-local: ${message}\n`);
  process.exit(code);
}

// ---------------------------------------------------------------------------------------
// Configuration and definitions

const configPath = process.argv[2] || process.env.SFN_LOCAL_CONFIG;
if (!configPath) die('usage: node server.mjs CONFIG.json (or set SFN_LOCAL_CONFIG)');

let config;
try {
  config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
} catch (err) {
  die(`reading config ${configPath}: ${err.message}`);
}

const region = config.region || 'us-east-1';
const accountId = config.accountId || '123456789012';
const host = config.host || '127.0.0.1';
const defaultTaskTimeoutSeconds = config.defaultTaskTimeoutSeconds ?? 900;

if (process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED === undefined) {
  // The SDK warns once per process on Node < 22; the log line below says it once, shorter.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
}

const require = createRequire(import.meta.url);
let engine;
let lambdaSdk;
try {
  const enginePath = require.resolve('aws-local-stepfunctions');
  engine = require(enginePath);
  // The Lambda SDK the engine itself depends on, resolved from the engine's location.
  lambdaSdk = createRequire(enginePath)('@aws-sdk/client-lambda');
} catch (err) {
  die(
    `cannot load aws-local-stepfunctions / @aws-sdk/client-lambda (${err.message}); ` +
      'install tools/package.json (make tools) and set NODE_PATH to its node_modules',
  );
}
const { StateMachine, ExecutionError, ExecutionAbortedError, ExecutionTimeoutError } = engine;

const DIRECT_LAMBDA_ARN = /^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9_$-]+)?$/;
const LAMBDA_INVOKE = /^arn:aws[a-z-]*:states:::lambda:invoke$/;
// The callback pattern: Step Functions invokes the function with a task token in its
// Parameters ($$.Task.Token), then waits for SendTaskSuccess / SendTaskFailure.
const LAMBDA_INVOKE_CALLBACK = /^arn:aws[a-z-]*:states:::lambda:invoke\.waitForTaskToken$/;
// The engine must never time a callback Task out itself (this server does, with
// TimeoutSeconds and HeartbeatSeconds); setTimeout's limit is about 24.8 days.
const ENGINE_CALLBACK_TIMEOUT_SECONDS = 2000000;
// Fields the engine would silently ignore; failing at startup beats a wrong local result.
const UNSUPPORTED_FIELDS = ['Assign', 'Arguments', 'Output', 'ItemReader', 'ResultWriter', 'ItemBatcher', 'Credentials'];

// substitute applies DefinitionSubstitutions the way CloudFormation does: plain text
// replacement of ${Key} before the definition is parsed.
function substitute(text, substitutions, where) {
  const missing = new Set();
  const out = text.replace(/\$\{([^}]*)\}/g, (match, key) => {
    if (Object.prototype.hasOwnProperty.call(substitutions, key)) return String(substitutions[key]);
    missing.add(key);
    return match;
  });
  if (missing.size > 0) {
    const names = [...missing].map((k) => '${' + k + '}').join(', ');
    throw new Error(`${where}: unresolved DefinitionSubstitutions ${names}; add them to "substitutions"`);
  }
  return out;
}

// walkStates visits every state, including those inside Parallel branches and Map processors.
function walkStates(definition, visit) {
  for (const [name, state] of Object.entries(definition.States || {})) {
    visit(name, state);
    for (const branch of state.Branches || []) walkStates(branch, visit);
    const processor = state.ItemProcessor || state.Iterator;
    if (processor) walkStates(processor, visit);
  }
}

const RETRIER_FIELDS = new Set(['ErrorEquals', 'IntervalSeconds', 'MaxAttempts', 'BackoffRate', 'MaxDelaySeconds', 'JitterStrategy', 'Comment']);

// retrierProblems checks what AWS refuses at deploy time but asl-validator 4.0.0 and the
// engine let through (a misspelt JitterStrategy would silently mean no jitter locally).
function retrierProblems(stateName, index, r) {
  const at = `state "${stateName}" Retry[${index}]`;
  const out = [];
  for (const key of Object.keys(r)) if (!RETRIER_FIELDS.has(key)) out.push(`${at}: unknown field ${key}`);
  if (r.JitterStrategy !== undefined && r.JitterStrategy !== 'FULL' && r.JitterStrategy !== 'NONE') {
    out.push(`${at}: JitterStrategy must be FULL or NONE, not ${JSON.stringify(r.JitterStrategy)}`);
  }
  if (r.BackoffRate !== undefined && !(typeof r.BackoffRate === 'number' && r.BackoffRate >= 1)) out.push(`${at}: BackoffRate must be >= 1.0`);
  if (r.IntervalSeconds !== undefined && !(Number.isInteger(r.IntervalSeconds) && r.IntervalSeconds >= 1)) out.push(`${at}: IntervalSeconds must be an integer >= 1`);
  if (r.MaxAttempts !== undefined && !(Number.isInteger(r.MaxAttempts) && r.MaxAttempts >= 0)) out.push(`${at}: MaxAttempts must be an integer >= 0`);
  if (r.MaxDelaySeconds !== undefined && !(Number.isInteger(r.MaxDelaySeconds) && r.MaxDelaySeconds >= 1)) out.push(`${at}: MaxDelaySeconds must be an integer >= 1`);
  return out;
}

const validatedDefinitions = new Set();

// A dotted reference path ($.a.b) into a state's input: what TimeoutSecondsPath and
// HeartbeatSecondsPath may use here.
const SIMPLE_PATH = /^\$(\.[A-Za-z_][A-Za-z0-9_-]*)+$/;

// callbackTask checks a .waitForTaskToken Task the way AWS does at deploy time (the
// token must be passed on, HeartbeatSeconds below TimeoutSeconds) and takes its timeouts
// away from the engine: this server enforces them, so that the history records
// TaskTimedOut and a late SendTaskSuccess is answered TaskTimedOut.
function callbackTask(name, state, problems) {
  if (!JSON.stringify(state.Parameters ?? null).includes('"$$.Task.Token"')) {
    problems.push(`Task state "${name}" uses .waitForTaskToken but its Parameters do not pass $$.Task.Token`);
    return undefined;
  }
  for (const field of ['TimeoutSecondsPath', 'HeartbeatSecondsPath']) {
    if (state[field] !== undefined && !(typeof state[field] === 'string' && SIMPLE_PATH.test(state[field]))) {
      problems.push(`Task state "${name}": ${field} must be a path like $.a.b locally`);
    }
  }
  for (const field of ['TimeoutSeconds', 'HeartbeatSeconds']) {
    if (state[field] !== undefined && !(Number.isInteger(state[field]) && state[field] >= 1)) {
      problems.push(`Task state "${name}": ${field} must be a positive integer`);
    }
  }
  if (state.TimeoutSeconds !== undefined && state.HeartbeatSeconds !== undefined && state.HeartbeatSeconds >= state.TimeoutSeconds) {
    problems.push(`Task state "${name}": HeartbeatSeconds must be smaller than TimeoutSeconds`);
  }
  const task = {
    kind: 'callback',
    resource: state.Resource,
    timeoutSeconds: state.TimeoutSeconds,
    timeoutPath: state.TimeoutSecondsPath,
    heartbeatSeconds: state.HeartbeatSeconds,
    heartbeatPath: state.HeartbeatSecondsPath,
  };
  delete state.TimeoutSecondsPath;
  delete state.HeartbeatSeconds;
  delete state.HeartbeatSecondsPath;
  state.TimeoutSeconds = ENGINE_CALLBACK_TIMEOUT_SECONDS;
  return task;
}

function loadStateMachine(sm) {
  if (!sm.name) throw new Error('every state machine needs a "name"');
  if (!sm.definitionPath) throw new Error(`state machine ${sm.name}: "definitionPath" is required`);
  const arn = sm.arn || `arn:aws:states:${region}:${accountId}:stateMachine:${sm.name}`;
  const where = `state machine ${sm.name} (${sm.definitionPath})`;
  const definitionText = substitute(fs.readFileSync(sm.definitionPath, 'utf8'), sm.substitutions || {}, where);
  let definition;
  try {
    definition = JSON.parse(definitionText);
  } catch (err) {
    throw new Error(`${where}: definition is not JSON after substitution: ${err.message}`);
  }
  if (definition.QueryLanguage === 'JSONata') {
    throw new Error(`${where}: QueryLanguage JSONata is not supported by aws-local-stepfunctions 3.0.0`);
  }

  const lambdaTasks = new Map(); // state name -> {kind, resource, timeoutSeconds}
  const retryOverrides = {};
  const problems = [];
  walkStates(definition, (name, state) => {
    for (const field of UNSUPPORTED_FIELDS) {
      if (field in state) problems.push(`state "${name}" uses ${field}, which aws-local-stepfunctions 3.0.0 does not support`);
    }
    if (state.QueryLanguage === 'JSONata') problems.push(`state "${name}" uses JSONata`);
    for (const [i, retrier] of (state.Retry || []).entries()) problems.push(...retrierProblems(name, i, retrier));
    if (config.retryIntervalsZero && Array.isArray(state.Retry)) retryOverrides[name] = 0;
    if (state.Type !== 'Task') return;
    let kind;
    if (DIRECT_LAMBDA_ARN.test(state.Resource)) kind = 'direct';
    else if (LAMBDA_INVOKE.test(state.Resource)) kind = 'invoke';
    else if (LAMBDA_INVOKE_CALLBACK.test(state.Resource)) kind = 'callback';
    else {
      problems.push(
        `Task state "${name}" has Resource "${state.Resource}"; only Lambda function ARNs, ` +
          'arn:aws:states:::lambda:invoke and arn:aws:states:::lambda:invoke.waitForTaskToken run locally',
      );
      return;
    }
    if (kind === 'callback') {
      const callback = callbackTask(name, state, problems);
      if (callback) lambdaTasks.set(name, callback);
      return;
    }
    // History shows only a timeout the definition states, like AWS.
    const task = { kind, resource: state.Resource, timeoutSeconds: state.TimeoutSeconds };
    if (state.TimeoutSeconds === undefined && state.TimeoutSecondsPath === undefined) {
      // AWS has no Task timeout by default (the function's own timeout applies); the engine
      // would fail every Task after 60 s with States.Timeout.
      state.TimeoutSeconds = defaultTaskTimeoutSeconds;
    }
    const seen = lambdaTasks.get(name);
    // The engine routes Task overrides by state name, across branches.
    if (seen && seen.resource !== task.resource) {
      problems.push(`two Task states are named "${name}" with different Resources`);
    }
    lambdaTasks.set(name, task);
  });
  if (problems.length > 0) throw new Error(`${where}:\n  ${problems.join('\n  ')}`);

  let engineMachine;
  try {
    // Validation builds a new Ajv each time (0.2-1 s); identical definitions validate once.
    const validationOptions = validatedDefinitions.has(definitionText) ? { noValidate: true } : { checkPaths: true, checkArn: true };
    engineMachine = new StateMachine(definition, { validationOptions });
    validatedDefinitions.add(definitionText);
  } catch (err) {
    throw new Error(`${where}: ${err.message}`);
  }
  return {
    name: sm.name,
    arn,
    executionArnPrefix: arn.replace(':stateMachine:', ':execution:') + ':',
    roleArn: sm.roleArn || `arn:aws:iam::${accountId}:role/${sm.name}-local`,
    definitionText,
    definition,
    engineMachine,
    lambdaTasks,
    retryOverrides,
    createdAt: Date.now(),
  };
}

const machines = new Map(); // state machine ARN -> machine
try {
  for (const sm of config.stateMachines || []) {
    const machine = loadStateMachine(sm);
    if (machines.has(machine.arn)) throw new Error(`duplicate state machine ARN ${machine.arn}`);
    machines.set(machine.arn, machine);
  }
} catch (err) {
  die(err.message);
}

// One Lambda client for all Task states. maxAttempts 1: Step Functions does not retry
// Lambda service errors by itself, the definition's Retry does.
const lambdaClient = new lambdaSdk.LambdaClient({
  region,
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  maxAttempts: 1,
  ...(config.lambdaEndpoint ? { endpoint: config.lambdaEndpoint } : {}),
});

// ---------------------------------------------------------------------------------------
// Executions

const executions = new Map(); // execution ARN -> execution (insertion order = start order)

class ApiError extends Error {
  constructor(type, message, status = 400) {
    super(message);
    this.type = type;
    this.status = status;
  }
}

// TaskError is what a Lambda Task handler throws: the engine matches Retry/Catch on
// `name` and puts `message` into the Cause.
class TaskError extends Error {
  constructor(name, cause, { retryable = true, catchable = true } = {}) {
    super(cause);
    this.name = name;
    this.isRetryable = retryable;
    this.isCatchable = catchable;
  }
}

const seconds = (ms) => ms / 1000;
const json = (value) => JSON.stringify(value === undefined ? null : value);
const causeText = (cause) => (cause === undefined || cause === null || typeof cause === 'string' ? cause : json(cause));

// detailsKey is the HistoryEvent member holding an event type's details: all
// <Type>StateEntered/Exited events share stateEntered/stateExitedEventDetails.
function detailsKey(type) {
  if (type.endsWith('StateEntered')) return 'stateEnteredEventDetails';
  if (type.endsWith('StateExited')) return 'stateExitedEventDetails';
  return type.charAt(0).toLowerCase() + type.slice(1) + 'EventDetails';
}

function addEvent(exec, type, details, timestamp = Date.now()) {
  const id = exec.events.length + 1;
  const event = { timestamp: seconds(timestamp), type, id, previousEventId: id - 1 };
  if (details) event[detailsKey(type)] = details;
  exec.events.push(event);
}

// lambdaErrorName maps an SDK failure to the names Step Functions uses: service errors
// are Lambda.<Exception>, failures to reach the service are Lambda.SdkClientException.
function lambdaErrorName(err) {
  if (!err || !err.$metadata || !err.$metadata.httpStatusCode) return 'Lambda.SdkClientException';
  let name = err.name;
  if (!name || name === 'Error' || name === 'UnknownError' || name.includes(' ')) {
    name = err.$metadata.httpStatusCode >= 500 ? 'ServiceException' : 'AWSLambdaException';
  }
  return `Lambda.${name}`;
}

const LAMBDA_EVENTS = {
  direct: { scheduled: 'LambdaFunctionScheduled', started: 'LambdaFunctionStarted', succeeded: 'LambdaFunctionSucceeded', failed: 'LambdaFunctionFailed', timedOut: 'LambdaFunctionTimedOut' },
  invoke: { scheduled: 'TaskScheduled', started: 'TaskStarted', succeeded: 'TaskSucceeded', failed: 'TaskFailed', timedOut: 'TaskTimedOut' },
};
const INVOKE_RESOURCE = { resourceType: 'lambda', resource: 'invoke' };

// invokeLambdaTask runs one attempt of a Lambda Task state like Step Functions does:
// the function's errorType becomes the error name and the raw error payload the Cause.
async function invokeLambdaTask(exec, stateName, task, input) {
  // Let the event-log reader catch up, so TaskStateEntered precedes the Lambda events.
  await new Promise((resolve) => setImmediate(resolve));
  if (exec.status !== 'RUNNING') throw new TaskError('States.Runtime', 'execution is no longer running', { retryable: false, catchable: false });

  const names = LAMBDA_EVENTS[task.kind];
  const attempt = { stateName, kind: task.kind, done: false };
  const record = (type, details) => {
    if (!attempt.done && exec.status === 'RUNNING') addEvent(exec, type, details);
  };
  let request;
  if (task.kind === 'direct') {
    request = { FunctionName: task.resource, Payload: Buffer.from(json(input)) };
    record(names.scheduled, {
      resource: task.resource,
      input: json(input),
      inputDetails: { truncated: false },
      ...(task.timeoutSeconds ? { timeoutInSeconds: task.timeoutSeconds } : {}),
    });
    record(names.started);
  } else {
    record(names.scheduled, {
      ...INVOKE_RESOURCE,
      region,
      parameters: json(input),
      ...(task.timeoutSeconds ? { timeoutInSeconds: task.timeoutSeconds } : {}),
    });
    if (input === null || typeof input !== 'object' || typeof input.FunctionName !== 'string') {
      const err = new TaskError('States.Runtime', 'arn:aws:states:::lambda:invoke needs Parameters.FunctionName', { retryable: false, catchable: false });
      record(names.failed, { ...INVOKE_RESOURCE, error: err.name, cause: err.message });
      attempt.done = true;
      throw err;
    }
    record(names.started, INVOKE_RESOURCE);
    request = { FunctionName: input.FunctionName };
    if (input.Payload !== undefined) request.Payload = Buffer.from(json(input.Payload));
    for (const field of ['Qualifier', 'InvocationType', 'ClientContext', 'LogType']) {
      if (input[field] !== undefined) request[field] = input[field];
    }
  }
  exec.attempts.add(attempt);

  const fail = (err) => {
    record(names.failed, task.kind === 'direct' ? { error: err.name, cause: err.message } : { ...INVOKE_RESOURCE, error: err.name, cause: err.message });
    attempt.done = true;
    exec.attempts.delete(attempt);
    return err;
  };

  let response;
  try {
    response = await lambdaClient.send(new lambdaSdk.InvokeCommand(request));
  } catch (err) {
    throw fail(new TaskError(lambdaErrorName(err), err && err.message ? err.message : String(err)));
  }
  // Trimmed: some runtimes end the payload with a newline; AWS's Cause has none.
  const text = response.Payload ? Buffer.from(response.Payload).toString('utf8').trim() : '';
  if (response.FunctionError) {
    let errorType;
    try {
      const payload = JSON.parse(text);
      if (payload && typeof payload.errorType === 'string' && payload.errorType) errorType = payload.errorType;
    } catch {
      // not JSON: Lambda.Unknown below
    }
    // AWS: the Cause is the function's error payload as a JSON string.
    throw fail(new TaskError(errorType || 'Lambda.Unknown', text || `function error: ${response.FunctionError}`));
  }
  let value = null;
  if (text !== '') {
    try {
      value = JSON.parse(text);
    } catch {
      throw fail(new TaskError('States.Runtime', `Lambda returned a payload that is not JSON: ${text.slice(0, 200)}`, { retryable: false, catchable: false }));
    }
  }
  let result = value;
  if (task.kind === 'invoke') {
    result = {
      ExecutedVersion: response.ExecutedVersion || '$LATEST',
      Payload: value,
      SdkHttpMetadata: { HttpStatusCode: response.StatusCode ?? 200 },
      SdkResponseMetadata: { RequestId: response.$metadata?.requestId || crypto.randomUUID() },
      StatusCode: response.StatusCode ?? 200,
    };
  }
  const output = json(result);
  record(names.succeeded, task.kind === 'direct' ? { output, outputDetails: { truncated: false } } : { ...INVOKE_RESOURCE, output, outputDetails: { truncated: false } });
  attempt.done = true;
  exec.attempts.delete(attempt);
  return result;
}

// ---------------------------------------------------------------------------------------
// The callback pattern (.waitForTaskToken)
//
// Each evaluation of a callback Task's Parameters ($$.Task.Token) issues a new token, as
// AWS issues one per attempt. The task waits until SendTaskSuccess or SendTaskFailure
// names its token, or until TimeoutSeconds (States.Timeout) or HeartbeatSeconds without
// a SendTaskHeartbeat (States.HeartbeatTimeout); both errors can be retried and caught.
// A token whose task has ended answers TaskTimedOut, as in AWS.

const TOKEN_PREFIX = 'AQB';
const tokens = new Map(); // token -> waiter

function issueToken(exec) {
  const token = TOKEN_PREFIX + Buffer.from(`${exec.arn}#${crypto.randomBytes(24).toString('hex')}`).toString('base64url');
  tokens.set(token, { token, exec, status: 'issued', stateName: undefined });
  exec.pendingToken = token;
  return token;
}

// waiterFor finds the task a client names, with AWS's errors for a malformed token
// (InvalidToken), one this endpoint never issued (TaskDoesNotExist) and one whose task
// has ended (TaskTimedOut).
function waiterFor(params) {
  const token = params.taskToken;
  if (typeof token !== 'string' || token.length < 1 || token.length > 2048) {
    throw new ApiError('ValidationException', 'taskToken must be a string of 1 to 2048 characters');
  }
  let decoded = '';
  if (token.startsWith(TOKEN_PREFIX)) decoded = Buffer.from(token.slice(TOKEN_PREFIX.length), 'base64url').toString('utf8');
  if (!/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[^#]+#[0-9a-f]{48}$/.test(decoded)) {
    throw new ApiError('InvalidToken', 'Invalid Token: the task token is malformed');
  }
  const waiter = tokens.get(token);
  if (!waiter) throw new ApiError('TaskDoesNotExist', 'Task Does Not Exist: no task has this token');
  if (waiter.status !== 'open' && waiter.status !== 'issued') {
    throw new ApiError('TaskTimedOut', 'Task Timed Out: the task token has expired or its task has already been closed');
  }
  return waiter;
}

// pathValue reads a $.a.b path of TimeoutSecondsPath / HeartbeatSecondsPath.
function pathValue(value, path) {
  for (const key of path.slice(2).split('.')) {
    if (value === null || typeof value !== 'object' || !(key in value)) return undefined;
    value = value[key];
  }
  return value;
}

function callbackSeconds(exec, stateName, seconds, path, field) {
  if (path === undefined) return seconds;
  const value = pathValue(exec.stateInputs.get(stateName), path);
  if (!Number.isInteger(value) || value < 1) {
    throw new TaskError('States.Runtime', `${field} ${path} does not point at a positive integer`, { retryable: false, catchable: false });
  }
  return value;
}

const CALLBACK_RESOURCE = { resourceType: 'lambda', resource: 'invoke.waitForTaskToken' };

// closeWaiter ends a callback task once: it records the history event and settles the
// Task state's promise. Later calls (a second answer, a timer) do nothing.
function closeWaiter(waiter, outcome) {
  if (waiter.status === 'closed') return;
  const early = waiter.status === 'issued' || !waiter.submitted;
  waiter.status = 'closed';
  clearTimeout(waiter.timeoutTimer);
  clearTimeout(waiter.heartbeatTimer);
  if (early && outcome.type !== 'timeout' && outcome.type !== 'abandon') {
    // Answered while the function was still being invoked: applied once it returns.
    waiter.early = outcome;
    return;
  }
  settleWaiter(waiter, outcome);
}

function settleWaiter(waiter, outcome) {
  const { exec } = waiter;
  const record = (type, details) => {
    if (exec.status === 'RUNNING') addEvent(exec, type, { ...CALLBACK_RESOURCE, ...details });
  };
  switch (outcome.type) {
    case 'success':
      record('TaskSucceeded', { output: outcome.output, outputDetails: { truncated: false } });
      waiter.resolve?.(JSON.parse(outcome.output));
      break;
    case 'failure':
      record('TaskFailed', { ...(outcome.error ? { error: outcome.error } : {}), ...(outcome.cause !== undefined ? { cause: outcome.cause } : {}) });
      waiter.reject?.(new TaskError(outcome.error ?? '', outcome.cause ?? ''));
      break;
    case 'timeout':
      record('TaskTimedOut', { error: outcome.error, cause: outcome.cause });
      waiter.reject?.(new TaskError(outcome.error, outcome.cause));
      break;
    default: // abandon: the execution ended; nothing waits any more
      break;
  }
}

function armHeartbeat(waiter) {
  if (!waiter.heartbeatSeconds) return;
  clearTimeout(waiter.heartbeatTimer);
  waiter.heartbeatTimer = setTimeout(
    () => closeWaiter(waiter, { type: 'timeout', error: 'States.HeartbeatTimeout', cause: `no heartbeat for ${waiter.heartbeatSeconds} seconds` }),
    waiter.heartbeatSeconds * 1000,
  );
}

// runCallbackTask runs one attempt of a .waitForTaskToken Task: invoke the function
// (TaskScheduled, TaskStarted, TaskSubmitted), then wait for the token's answer.
async function runCallbackTask(exec, stateName, task, input) {
  const token = exec.pendingToken;
  exec.pendingToken = undefined;
  await new Promise((resolve) => setImmediate(resolve));
  if (exec.status !== 'RUNNING') throw new TaskError('States.Runtime', 'execution is no longer running', { retryable: false, catchable: false });
  const waiter = token && tokens.get(token);
  if (!waiter) throw new TaskError('States.Runtime', `Task state "${stateName}" was given no $$.Task.Token`, { retryable: false, catchable: false });
  waiter.stateName = stateName;
  const timeoutSeconds = callbackSeconds(exec, stateName, task.timeoutSeconds, task.timeoutPath, 'TimeoutSecondsPath');
  const heartbeatSeconds = callbackSeconds(exec, stateName, task.heartbeatSeconds, task.heartbeatPath, 'HeartbeatSecondsPath');
  const record = (type, details) => {
    if (exec.status === 'RUNNING') addEvent(exec, type, { ...CALLBACK_RESOURCE, ...details });
  };
  record('TaskScheduled', {
    region,
    parameters: json(input),
    ...(timeoutSeconds ? { timeoutInSeconds: timeoutSeconds } : {}),
    ...(heartbeatSeconds ? { heartbeatInSeconds: heartbeatSeconds } : {}),
  });
  if (input === null || typeof input !== 'object' || typeof input.FunctionName !== 'string') {
    waiter.status = 'closed';
    const err = new TaskError('States.Runtime', 'arn:aws:states:::lambda:invoke.waitForTaskToken needs Parameters.FunctionName', { retryable: false, catchable: false });
    record('TaskFailed', { error: err.name, cause: err.message });
    throw err;
  }
  record('TaskStarted', {});
  const done = new Promise((resolve, reject) => {
    waiter.resolve = resolve;
    waiter.reject = reject;
  });
  done.catch(() => {}); // settled while the function still runs: handled when returned
  if (waiter.status === 'issued') waiter.status = 'open';
  waiter.heartbeatSeconds = heartbeatSeconds;
  if (timeoutSeconds) {
    waiter.timeoutTimer = setTimeout(
      () => closeWaiter(waiter, { type: 'timeout', error: 'States.Timeout', cause: `the task did not answer within ${timeoutSeconds} seconds` }),
      timeoutSeconds * 1000,
    );
  }
  armHeartbeat(waiter);

  const request = { FunctionName: input.FunctionName };
  if (input.Payload !== undefined) request.Payload = Buffer.from(json(input.Payload));
  for (const field of ['Qualifier', 'InvocationType', 'ClientContext', 'LogType']) {
    if (input[field] !== undefined) request[field] = input[field];
  }
  let failure;
  let submitted;
  try {
    const response = await lambdaClient.send(new lambdaSdk.InvokeCommand(request));
    const text = response.Payload ? Buffer.from(response.Payload).toString('utf8').trim() : '';
    if (response.FunctionError) {
      let errorType;
      try {
        const payload = JSON.parse(text);
        if (payload && typeof payload.errorType === 'string' && payload.errorType) errorType = payload.errorType;
      } catch {
        // not JSON: Lambda.Unknown
      }
      failure = new TaskError(errorType || 'Lambda.Unknown', text || `function error: ${response.FunctionError}`);
    } else {
      let payload = null;
      try {
        payload = text === '' ? null : JSON.parse(text);
      } catch {
        payload = text;
      }
      submitted = {
        ExecutedVersion: response.ExecutedVersion || '$LATEST',
        Payload: payload,
        SdkHttpMetadata: { HttpStatusCode: response.StatusCode ?? 200 },
        SdkResponseMetadata: { RequestId: response.$metadata?.requestId || crypto.randomUUID() },
        StatusCode: response.StatusCode ?? 200,
      };
    }
  } catch (err) {
    failure = new TaskError(lambdaErrorName(err), err && err.message ? err.message : String(err));
  }
  if (failure && !waiter.early) {
    if (waiter.status !== 'closed') {
      waiter.status = 'closed';
      clearTimeout(waiter.timeoutTimer);
      clearTimeout(waiter.heartbeatTimer);
      record('TaskFailed', { error: failure.name, cause: failure.message });
      throw failure;
    }
    return done; // timed out while the function ran: the timeout is the task's outcome
  }
  if (submitted && (waiter.status !== 'closed' || waiter.early)) record('TaskSubmitted', { output: json(submitted), outputDetails: { truncated: false } });
  waiter.submitted = true;
  if (waiter.early) settleWaiter(waiter, waiter.early);
  return done;
}

// abandonWaiters closes the open tasks of an execution that ended or was stopped, so
// their tokens answer TaskTimedOut from now on.
function abandonWaiters(exec) {
  for (const waiter of tokens.values()) {
    if (waiter.exec === exec && waiter.status !== 'closed') closeWaiter(waiter, { type: 'abandon' });
  }
}

function sendTaskSuccess(params) {
  const waiter = waiterFor(params);
  const output = params.output;
  if (typeof output !== 'string' || Buffer.byteLength(output) > 256 * 1024) {
    throw new ApiError('InvalidOutput', 'Invalid Output: output must be a JSON string of at most 256 KiB');
  }
  try {
    JSON.parse(output);
  } catch (err) {
    throw new ApiError('InvalidOutput', `Invalid Output: '${err.message}'`);
  }
  closeWaiter(waiter, { type: 'success', output });
  log(`task success ${describeShort(waiter.exec)} state=${waiter.stateName ?? '?'}`);
  return {};
}

function sendTaskFailure(params) {
  if (params.error !== undefined && (typeof params.error !== 'string' || params.error.length > 256)) {
    throw new ApiError('ValidationException', 'error must be a string of at most 256 characters');
  }
  if (params.cause !== undefined && (typeof params.cause !== 'string' || params.cause.length > 32768)) {
    throw new ApiError('ValidationException', 'cause must be a string of at most 32768 characters');
  }
  const waiter = waiterFor(params);
  closeWaiter(waiter, { type: 'failure', error: params.error || undefined, cause: params.cause });
  log(`task failure ${describeShort(waiter.exec)} state=${waiter.stateName ?? '?'} error=${params.error ?? ''}`);
  return {};
}

function sendTaskHeartbeat(params) {
  const waiter = waiterFor(params);
  armHeartbeat(waiter);
  return {};
}

// failureInfo turns an engine failure into AWS's {error, cause}; a Fail state without
// Error/Cause has none in AWS (the engine invents "FailStateError" and a sentence).
function failureInfo(exec, error, cause) {
  const failState = exec.lastFailState;
  if (failState) {
    return {
      error: failState.Error !== undefined || failState.ErrorPath !== undefined ? error : undefined,
      cause: failState.Cause !== undefined || failState.CausePath !== undefined ? causeText(cause) : undefined,
    };
  }
  return { error, cause: causeText(cause) };
}

function stateDefinition(exec, name) {
  let found;
  walkStates(exec.machine.definition, (n, s) => {
    if (n === name && !found) found = s;
  });
  return found;
}

// translate maps one engine event to AWS history events.
function translate(exec, ev) {
  const ts = ev.timestamp;
  const state = ev.state;
  switch (ev.type) {
    case 'ExecutionStarted':
      addEvent(exec, 'ExecutionStarted', { input: exec.input, inputDetails: { truncated: false }, roleArn: exec.machine.roleArn }, ts);
      break;
    case 'ExecutionSucceeded':
      addEvent(exec, 'ExecutionSucceeded', { output: json(ev.output), outputDetails: { truncated: false } }, ts);
      break;
    case 'ExecutionFailed': {
      const info = failureInfo(exec, ev.Error, ev.Cause);
      addEvent(exec, 'ExecutionFailed', { ...(info.error !== undefined ? { error: info.error } : {}), ...(info.cause !== undefined ? { cause: info.cause } : {}) }, ts);
      break;
    }
    case 'ExecutionAborted':
      addEvent(exec, 'ExecutionAborted', { ...(exec.error !== undefined ? { error: exec.error } : {}), ...(exec.cause !== undefined ? { cause: exec.cause } : {}) }, ts);
      break;
    case 'ExecutionTimeout':
      addEvent(exec, 'ExecutionTimedOut', { error: 'States.Timeout', cause: 'The execution ran longer than the TimeoutSeconds of the state machine' }, ts);
      break;
    case 'StateEntered':
      exec.failedStates.delete(state.name);
      exec.stateInputs.set(state.name, state.input);
      addEvent(exec, `${state.type}StateEntered`, { name: state.name, input: json(state.input), inputDetails: { truncated: false } }, ts);
      if (state.type === 'Parallel') addEvent(exec, 'ParallelStateStarted', null, ts);
      // Remember a Fail state until the next state starts: its failure is the one that follows.
      exec.lastFailState = state.type === 'Fail' ? stateDefinition(exec, state.name) || {} : undefined;
      break;
    case 'StateExited':
      if ((state.type === 'Parallel' || state.type === 'Map') && !exec.failedStates.has(state.name)) {
        addEvent(exec, `${state.type}StateSucceeded`, null, ts);
      }
      exec.failedStates.delete(state.name);
      addEvent(exec, `${state.type}StateExited`, { name: state.name, output: json(state.output), outputDetails: { truncated: false } }, ts);
      break;
    case 'StateFailed':
      if (state.type === 'Task' && ev.Error === 'States.Timeout') {
        // The engine's Task timeout won the race against the Lambda call.
        for (const attempt of exec.attempts) {
          if (attempt.stateName !== state.name || attempt.done) continue;
          const names = LAMBDA_EVENTS[attempt.kind];
          const details = { error: 'States.Timeout', cause: causeText(ev.Cause) };
          addEvent(exec, names.timedOut, attempt.kind === 'direct' ? details : { ...INVOKE_RESOURCE, ...details }, ts);
          attempt.done = true;
          exec.attempts.delete(attempt);
          break;
        }
      } else if (state.type === 'Parallel' || state.type === 'Map') {
        exec.failedStates.add(state.name);
        addEvent(exec, `${state.type}StateFailed`, null, ts);
      }
      break;
    case 'MapIterationStarted':
    case 'MapIterationSucceeded':
    case 'MapIterationFailed':
      addEvent(exec, ev.type, { name: ev.parentState.name, index: ev.index }, ts);
      break;
    default:
      // StateRetried, StateCaught, ParallelBranch*: no AWS history event of their own.
      break;
  }
}

async function readEvents(exec, eventLogs) {
  for await (const ev of eventLogs) {
    try {
      translate(exec, ev);
    } catch (err) {
      log(`history: cannot record ${ev.type} for ${exec.arn}: ${err.message}`);
    }
  }
}

function validateName(name) {
  if (typeof name !== 'string' || name.length < 1 || name.length > 80) {
    throw new ApiError('InvalidName', 'Invalid Name: execution names have 1 to 80 characters');
  }
  // AWS: no whitespace, brackets, wildcards, special characters or control characters.
  if (/[\s<>{}\[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]/u.test(name)) {
    throw new ApiError('InvalidName', `Invalid Name: '${name}'`);
  }
}

function machineFor(arn) {
  if (typeof arn !== 'string' || !arn.startsWith('arn:')) throw new ApiError('InvalidArn', `Invalid Arn: '${arn}'`);
  const machine = machines.get(arn);
  if (!machine) throw new ApiError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${arn}'`);
  return machine;
}

function executionFor(arn) {
  if (typeof arn !== 'string' || !arn.startsWith('arn:')) throw new ApiError('InvalidArn', `Invalid Arn: '${arn}'`);
  const exec = executions.get(arn);
  if (!exec) throw new ApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${arn}'`);
  return exec;
}

function describeShort(exec) {
  return `${exec.machine.name}/${exec.name}`;
}

async function finish(exec, settled) {
  // The history's last event comes from the event log; give the reader a moment so a
  // client that sees a closed status also sees the closing history event.
  await Promise.race([exec.reading, new Promise((resolve) => setTimeout(resolve, 1000))]);
  if (exec.status === 'RUNNING') {
    exec.stopDate = Date.now();
    if (settled.ok) {
      exec.status = 'SUCCEEDED';
      exec.output = json(settled.value);
    } else if (settled.error instanceof ExecutionTimeoutError) {
      exec.status = 'TIMED_OUT';
      exec.error = 'States.Timeout';
    } else if (settled.error instanceof ExecutionAbortedError) {
      exec.status = 'ABORTED';
    } else {
      const inner = settled.error instanceof ExecutionError && settled.error.cause ? settled.error.cause : settled.error;
      const info = failureInfo(exec, inner && inner.name, inner && (inner.cause ?? inner.message));
      exec.status = 'FAILED';
      exec.error = info.error;
      exec.cause = info.cause;
    }
  }
  abandonWaiters(exec);
  const took = `${exec.stopDate - exec.startDate}ms`;
  const detail = exec.status === 'SUCCEEDED' ? '' : ` error=${exec.error ?? ''} cause=${JSON.stringify(String(exec.cause ?? '').slice(0, 300))}`;
  log(`execution ${exec.status} ${describeShort(exec)} in ${took}${detail}`);
}

function startExecution(params) {
  const machine = machineFor(params.stateMachineArn);
  const name = params.name ?? crypto.randomUUID();
  validateName(name);
  const input = params.input ?? '{}';
  if (typeof input !== 'string') throw new ApiError('InvalidExecutionInput', 'Invalid State Machine Execution Input: input must be a string');
  if (Buffer.byteLength(input) > 256 * 1024) throw new ApiError('InvalidExecutionInput', 'Invalid State Machine Execution Input: larger than 256 KiB');
  let inputValue;
  try {
    inputValue = JSON.parse(input);
  } catch (err) {
    throw new ApiError('InvalidExecutionInput', `Invalid State Machine Execution Input: '${err.message}'`);
  }

  const arn = machine.executionArnPrefix + name;
  const existing = executions.get(arn);
  if (existing) {
    // Standard workflows: same name and input while RUNNING answers like the first call.
    if (existing.status === 'RUNNING' && existing.input === input) {
      return { executionArn: existing.arn, startDate: seconds(existing.startDate) };
    }
    throw new ApiError('ExecutionAlreadyExists', `Execution Already Exists: '${arn}'`);
  }

  const exec = {
    arn,
    name,
    machine,
    input,
    status: 'RUNNING',
    startDate: Date.now(),
    stopDate: undefined,
    output: undefined,
    error: undefined,
    cause: undefined,
    events: [],
    attempts: new Set(), // Lambda attempts in flight
    failedStates: new Set(),
    lastFailState: undefined,
    stateInputs: new Map(), // state name -> its latest input (TimeoutSecondsPath, HeartbeatSecondsPath)
    pendingToken: undefined, // the token the last $$.Task.Token evaluation issued
  };
  executions.set(arn, exec);

  const handlers = {};
  for (const [stateName, task] of machine.lambdaTasks) {
    handlers[stateName] =
      task.kind === 'callback' ? (taskInput) => runCallbackTask(exec, stateName, task, taskInput) : (taskInput) => invokeLambdaTask(exec, stateName, task, taskInput);
  }
  exec.run = machine.engineMachine.run(inputValue, {
    overrides: { taskResourceLocalHandlers: handlers, retryIntervalOverrides: machine.retryOverrides },
    // The engine fills Execution.Input and StartTime; $$.State stays empty. $$.Task.Token
    // is read when a Task's Parameters are evaluated (once per attempt, right before the
    // Task's handler runs), so each read issues the token of that attempt.
    context: {
      Execution: { Id: arn, Name: name, RoleArn: machine.roleArn },
      StateMachine: { Id: machine.arn, Name: machine.name },
      Task: {
        get Token() {
          return issueToken(exec);
        },
      },
    },
  });
  exec.reading = readEvents(exec, exec.run.eventLogs).catch((err) => log(`history reader for ${arn}: ${err.message}`));
  exec.run.result.then(
    (value) => finish(exec, { ok: true, value }),
    (error) => finish(exec, { ok: false, error }),
  );
  log(`execution started ${describeShort(exec)} arn=${arn}`);
  return { executionArn: arn, startDate: seconds(exec.startDate) };
}

function describeExecution(params) {
  const exec = executionFor(params.executionArn);
  const out = {
    executionArn: exec.arn,
    stateMachineArn: exec.machine.arn,
    name: exec.name,
    status: exec.status,
    startDate: seconds(exec.startDate),
    input: exec.input,
    inputDetails: { included: true },
  };
  if (exec.stopDate !== undefined) out.stopDate = seconds(exec.stopDate);
  if (exec.output !== undefined) {
    out.output = exec.output;
    out.outputDetails = { included: true };
  }
  if (exec.error !== undefined) out.error = exec.error;
  if (exec.cause !== undefined) out.cause = exec.cause;
  return out;
}

function pageSize(maxResults) {
  if (maxResults === undefined || maxResults === null || maxResults === 0) return 100;
  if (!Number.isInteger(maxResults) || maxResults < 0 || maxResults > 1000) {
    throw new ApiError('ValidationException', 'maxResults must be between 0 and 1000');
  }
  return maxResults;
}

// Tokens are opaque to clients; here they carry the offset and what they were issued for.
function encodeToken(scope, offset) {
  return Buffer.from(JSON.stringify({ scope, offset })).toString('base64url');
}

function decodeToken(token, scope) {
  if (token === undefined || token === null || token === '') return 0;
  try {
    const decoded = JSON.parse(Buffer.from(String(token), 'base64url').toString('utf8'));
    if (decoded.scope === scope && Number.isInteger(decoded.offset) && decoded.offset >= 0) return decoded.offset;
  } catch {
    // fall through
  }
  throw new ApiError('InvalidToken', `Invalid Token: '${token}'`);
}

function page(items, params, scope) {
  const size = pageSize(params.maxResults);
  const offset = decodeToken(params.nextToken, scope);
  const slice = items.slice(offset, offset + size);
  const out = { items: slice };
  if (offset + size < items.length) out.nextToken = encodeToken(scope, offset + size);
  return out;
}

function getExecutionHistory(params) {
  const exec = executionFor(params.executionArn);
  let events = exec.events.slice();
  if (params.reverseOrder) events.reverse();
  if (params.includeExecutionData === false) {
    events = events.map((e) => {
      const copy = structuredClone(e);
      for (const key of Object.keys(copy)) {
        if (key.endsWith('EventDetails')) {
          delete copy[key].input;
          delete copy[key].output;
          delete copy[key].parameters;
        }
      }
      return copy;
    });
  }
  const { items, nextToken } = page(events, params, `history:${exec.arn}:${Boolean(params.reverseOrder)}`);
  return { events: items, ...(nextToken ? { nextToken } : {}) };
}

const STATUSES = ['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED', 'PENDING_REDRIVE'];

function listExecutions(params) {
  const machine = machineFor(params.stateMachineArn);
  if (params.statusFilter !== undefined && !STATUSES.includes(params.statusFilter)) {
    throw new ApiError('ValidationException', `statusFilter must be one of ${STATUSES.join(', ')}`);
  }
  const all = [...executions.values()]
    .filter((e) => e.machine === machine && (!params.statusFilter || e.status === params.statusFilter))
    .reverse() // newest first, like AWS
    .map((e) => ({
      executionArn: e.arn,
      stateMachineArn: machine.arn,
      name: e.name,
      status: e.status,
      startDate: seconds(e.startDate),
      ...(e.stopDate !== undefined ? { stopDate: seconds(e.stopDate) } : {}),
    }));
  const { items, nextToken } = page(all, params, `executions:${machine.arn}:${params.statusFilter || ''}`);
  return { executions: items, ...(nextToken ? { nextToken } : {}) };
}

function stopExecution(params) {
  const exec = executionFor(params.executionArn);
  if (exec.status === 'RUNNING') {
    exec.status = 'ABORTED';
    exec.stopDate = Date.now();
    if (params.error !== undefined) exec.error = String(params.error);
    if (params.cause !== undefined) exec.cause = String(params.cause);
    exec.run.abort();
    abandonWaiters(exec);
  }
  return { stopDate: seconds(exec.stopDate) };
}

function describeStateMachine(params) {
  const machine = machineFor(params.stateMachineArn);
  return {
    stateMachineArn: machine.arn,
    name: machine.name,
    status: 'ACTIVE',
    definition: machine.definitionText,
    roleArn: machine.roleArn,
    type: 'STANDARD',
    creationDate: seconds(machine.createdAt),
  };
}

function listStateMachines(params) {
  const all = [...machines.values()].map((m) => ({
    stateMachineArn: m.arn,
    name: m.name,
    type: 'STANDARD',
    creationDate: seconds(m.createdAt),
  }));
  const { items, nextToken } = page(all, params, 'statemachines');
  return { stateMachines: items, ...(nextToken ? { nextToken } : {}) };
}

const operations = {
  StartExecution: startExecution,
  DescribeExecution: describeExecution,
  GetExecutionHistory: getExecutionHistory,
  ListExecutions: listExecutions,
  StopExecution: stopExecution,
  DescribeStateMachine: describeStateMachine,
  ListStateMachines: listStateMachines,
  SendTaskSuccess: sendTaskSuccess,
  SendTaskFailure: sendTaskFailure,
  SendTaskHeartbeat: sendTaskHeartbeat,
};

// ---------------------------------------------------------------------------------------
// HTTP (AWS JSON 1.0)

function send(res, status, body, extraHeaders = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.0',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': crypto.randomUUID(),
    ...extraHeaders,
  });
  res.end(text);
}

function sendError(res, err) {
  // aws-sdk-go-v2 reads X-Amzn-ErrorType first, then __type; both carry the bare code.
  send(res, err.status, { __type: err.type, message: err.message }, { 'x-amzn-errortype': err.type });
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    try {
      if (req.method !== 'POST') throw new ApiError('UnknownOperationException', 'POST / with X-Amz-Target', 404);
      const target = String(req.headers['x-amz-target'] || '');
      const [prefix, op] = target.split('.');
      const handler = prefix === 'AWSStepFunctions' ? operations[op] : undefined;
      if (!handler) throw new ApiError('UnknownOperationException', `operation not supported locally: '${target}'`);
      let params = {};
      const body = Buffer.concat(chunks).toString('utf8');
      if (body.trim() !== '') {
        try {
          params = JSON.parse(body);
        } catch (err) {
          throw new ApiError('SerializationException', `request body is not JSON: ${err.message}`);
        }
      }
      send(res, 200, handler(params || {}));
    } catch (err) {
      if (err instanceof ApiError) {
        sendError(res, err);
      } else {
        log(`internal error: ${err && err.stack ? err.stack : err}`);
        sendError(res, new ApiError('InternalFailure', String(err && err.message ? err.message : err), 500));
      }
    }
  });
});

server.on('error', (err) => {
  if (err.code === 'EADDRINUSE') die(`port ${config.port} is in use`, EXIT_ADDR_IN_USE);
  die(`server: ${err.message}`, 1);
});

process.on('unhandledRejection', (err) => log(`unhandled rejection: ${err && err.stack ? err.stack : err}`));

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}

if (config.parentPid) {
  // Don't outlive the process that started us (e.g. a test binary that was killed).
  setInterval(() => {
    if (process.ppid !== config.parentPid) {
      log(`parent ${config.parentPid} is gone; exiting`);
      process.exit(0);
    }
  }, 1000).unref();
}

server.listen(config.port || 0, host, () => {
  const { port } = server.address();
  const names = [...machines.values()].map((m) => m.name).join(', ') || 'none';
  const node = Number(process.versions.node.split('.')[0]) < 22 ? ` (node ${process.version}: Promise.withResolvers polyfilled)` : '';
  const lambda = config.lambdaEndpoint || process.env.AWS_ENDPOINT_URL_LAMBDA || process.env.AWS_ENDPOINT_URL || 'AWS default';
  log(`listening on http://${host}:${port}; state machines: ${names}; lambda endpoint: ${lambda}${node}`);
});
