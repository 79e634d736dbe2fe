/**
 * What harmonia-ci needs of a forge (GitHub, Gitea), independent of which one it is.
 *
 * - repository: a git repository on a forge (`repositories` row); a project is an enabled one.
 * - delivery: one webhook request, identified by the forge's delivery id.
 * - intent: what a delivery asks for once parsed (a push to signal, a PR to check, a comment).
 * - commit status: the green or red mark per commit and context (`harmonia-ci/nix-eval`).
 */

export type ForgeKind = 'github' | 'gitea';

export type StatusState = 'pending' | 'success' | 'failure' | 'error';

/** The two commit status contexts. */
export const EVAL_CONTEXT = 'harmonia-ci/nix-eval';
export const BUILD_CONTEXT = 'harmonia-ci/nix-build';

/** A repository as the forge's API addresses it. */
export interface RepositoryRef {
  owner: string;
  name: string;
  /** GitHub App installation that can act on it. */
  installationId?: number | null;
}

export interface CommitStatus {
  state: StatusState;
  context: string;
  description: string;
  targetUrl: string;
}

/** GitHub's deployment states that harmonia-ci sends. */
export type DeploymentState = 'queued' | 'in_progress' | 'success' | 'failure' | 'inactive';

/** A deployment of a commit to an environment, as the forge shows it. */
export interface ForgeDeployment {
  sha: string;
  environment: string;
  description: string;
}

export interface ForgeDeploymentStatus {
  state: DeploymentState;
  description: string;
  /** The deployment's page on the dashboard. */
  logUrl: string;
}

/** A repository found on the forge, as stored in `repositories`. */
export interface DiscoveredRepository {
  forge: ForgeKind;
  owner: string;
  name: string;
  cloneUrl: string;
  defaultBranch: string;
  forgeId: number;
  installationId?: number;
  private: boolean;
}

export interface PullRequestHead {
  number: number;
  sha: string;
  author: string;
  /** The head branch lives in the base repository (its author can push there). */
  sameRepository: boolean;
}

/** One forge's API, as the webhook dispatcher, the status reporter and the project commands use it. */
/** A person's right on a repository: none < read < write < admin. */
export type RepoPermission = 'none' | 'read' | 'write' | 'admin';

export interface ForgeClient {
  readonly kind: ForgeKind;
  setStatus(repo: RepositoryRef, sha: string, status: CommitStatus): Promise<void>;
  pullRequest(repo: RepositoryRef, number: number): Promise<PullRequestHead>;
  /** Whether `user` may push to the repository (what PR trust calls a collaborator). */
  canPush(repo: RepositoryRef, user: string): Promise<boolean>;
  /** `user`'s permission on the repository, as the forge's collaborator permission reports it. */
  permission(repo: RepositoryRef, user: string): Promise<RepoPermission>;
  /** The tree hash of a commit, for tree-hash dedup; undefined when the forge does not know the commit. */
  commitTree(repo: RepositoryRef, sha: string): Promise<string | undefined>;
  branchHead(repo: RepositoryRef, branch: string): Promise<{ sha: string; treeHash?: string }>;
  /** Every repository the credentials can see. */
  discover(): Promise<DiscoveredRepository[]>;
  /** Creates a deployment on the forge and returns its id; absent where the forge has no deployments API (Gitea). */
  createDeployment?(repo: RepositoryRef, deployment: ForgeDeployment): Promise<number>;
  setDeploymentStatus?(repo: RepositoryRef, deploymentId: number, status: ForgeDeploymentStatus): Promise<void>;
  /** Registers a push / pull_request / issue_comment webhook (forges without app-level webhooks); returns its id. */
  registerHook?(repo: RepositoryRef, url: string, secret: string): Promise<number>;
  /** Removes the webhook by id, or any hook pointing at `url` when the id is unknown. */
  removeHook?(repo: RepositoryRef, hookId: number | null, url: string): Promise<void>;
}

/** The configured forges of this server. */
export interface Forges {
  github?: ForgeClient;
  gitea?: ForgeClient & { webhookSecret(): Promise<string | undefined> };
  /** The client for a repository's forge; throws ForgeNotConfiguredError when it is not configured. */
  get(kind: string): ForgeClient;
}
