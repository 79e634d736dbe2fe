/** Every workflow the coordinator's worker runs (its `workflowsPath`). */
export { refWorkflow } from './ref.ts';
export { evalWorkflow } from './eval.ts';
export { buildWorkflow } from './build.ts';
export { nodeWorkflow } from './node.ts';
export { pollWorkflow } from './poll.ts';
export { deployWorkflow } from './deploy.ts';
export { notifyWorkflow } from './notify.ts';
