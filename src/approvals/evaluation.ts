/** The security evaluation checklist of a tool request, and how its answers are judged. */

export const ANSWERS = ['yes', 'no', 'not-applicable'] as const;
export type Answer = (typeof ANSWERS)[number];

export interface EvaluationItemDefinition {
  /** The control of the T1072 guidance the item gives evidence for. */
  control: 'EVALUATE' | 'ISOLATE' | 'LIMIT-ADMINS' | 'PATCH' | 'SIGNED-DEPLOY';
  title: string;
  /** Asked only of systems that deploy software; for others the item does not apply. */
  deployingOnly: boolean;
  /** Whether "not applicable" is an acceptable answer where the item applies. */
  mayBeNotApplicable: boolean;
  /** Keys of `details` a "yes" answer must carry. */
  requiredDetails: string[];
}

export const EVALUATION_ITEMS = {
  'provider-assessment': {
    control: 'EVALUATE',
    title: 'A security assessment of the provider is on file (report type and date)',
    deployingOnly: false,
    mayBeNotApplicable: false,
    requiredDetails: ['reportType', 'reportDate'],
  },
  'admin-mfa': {
    control: 'ISOLATE',
    title: 'Admin access supports and enforces multi-factor authentication',
    deployingOnly: false,
    mayBeNotApplicable: false,
    requiredDetails: [],
  },
  'admin-sso': {
    control: 'ISOLATE',
    title: 'Admin access signs in through the organisation single sign-on',
    deployingOnly: false,
    mayBeNotApplicable: true,
    requiredDetails: [],
  },
  'role-separation': {
    control: 'LIMIT-ADMINS',
    title: 'Administrative and everyday roles are separate',
    deployingOnly: false,
    mayBeNotApplicable: false,
    requiredDetails: [],
  },
  'management-access-monitored': {
    control: 'ISOLATE',
    title: 'Management access is logged and forwarded for monitoring',
    deployingOnly: false,
    mayBeNotApplicable: false,
    requiredDetails: [],
  },
  'network-isolation': {
    control: 'ISOLATE',
    title: 'A network isolation plan restricts who can reach the management interface',
    deployingOnly: false,
    mayBeNotApplicable: false,
    requiredDetails: [],
  },
  'supported-version': {
    control: 'PATCH',
    title: 'The deployed version is supported and has a patch cadence',
    deployingOnly: false,
    mayBeNotApplicable: false,
    requiredDetails: ['patchCadence'],
  },
  'signed-deployment': {
    control: 'SIGNED-DEPLOY',
    title: 'The system deploys only signed binaries, and this is enforced',
    deployingOnly: true,
    mayBeNotApplicable: false,
    requiredDetails: [],
  },
  'signing-certificates-isolated': {
    control: 'SIGNED-DEPLOY',
    title:
      'Trusted signing certificates are kept on a host other than the system, with no or tightly controlled remote access',
    deployingOnly: true,
    mayBeNotApplicable: false,
    requiredDetails: [],
  },
} as const satisfies Record<string, EvaluationItemDefinition>;

export type EvaluationItem = keyof typeof EVALUATION_ITEMS;
export const EVALUATION_ITEM_KEYS = Object.keys(EVALUATION_ITEMS) as EvaluationItem[];

export interface StoredAnswer {
  item: string;
  answer: Answer;
  details: Record<string, unknown>;
}

export interface EvaluationSubject {
  deploysSoftware: boolean;
  /** Hostnames and addresses of the system itself. */
  systemHosts: string[];
  signingHost: string | null;
  mandatoryItems: string[];
}

export interface ItemJudgement {
  item: EvaluationItem;
  control: string;
  title: string;
  applies: boolean;
  mandatory: boolean;
  answer: Answer | null;
  /** Reason the item fails, or null when it passes or is optional and unanswered. */
  problem: string | null;
}

export interface EvaluationJudgement {
  items: ItemJudgement[];
  /** Every mandatory item that applies has an answer. */
  complete: boolean;
  /** Complete, and no mandatory item fails. */
  passing: boolean;
  /** Computed, not answered: the signing host is not one of the system's own hosts. */
  certificatesOffSystemHost: boolean | null;
}

/** Normalises a host name or address for comparison (case and a trailing dot do not matter). */
function hostKey(host: string): string {
  return host.trim().toLowerCase().replace(/\.$/, '');
}

export function judgeEvaluation(
  subject: EvaluationSubject,
  answers: StoredAnswer[],
): EvaluationJudgement {
  const byItem = new Map(answers.map((answer) => [answer.item, answer]));
  const systemHosts = new Set(subject.systemHosts.map(hostKey));
  const certificatesOffSystemHost = !subject.deploysSoftware
    ? null
    : subject.signingHost === null
      ? false
      : !systemHosts.has(hostKey(subject.signingHost));

  const items = EVALUATION_ITEM_KEYS.map((item): ItemJudgement => {
    const definition: EvaluationItemDefinition = EVALUATION_ITEMS[item];
    const applies = !definition.deployingOnly || subject.deploysSoftware;
    const mandatory = applies && subject.mandatoryItems.includes(item);
    const stored = byItem.get(item);
    const answer = stored?.answer ?? null;
    return {
      item,
      control: definition.control,
      title: definition.title,
      applies,
      mandatory,
      answer,
      problem: mandatory
        ? problemOf(item, definition, stored, subject, certificatesOffSystemHost)
        : null,
    };
  });

  const complete = items.every((item) => !item.mandatory || item.answer !== null);
  return {
    items,
    complete,
    passing: complete && items.every((item) => item.problem === null),
    certificatesOffSystemHost,
  };
}

function problemOf(
  item: EvaluationItem,
  definition: EvaluationItemDefinition,
  stored: StoredAnswer | undefined,
  subject: EvaluationSubject,
  certificatesOffSystemHost: boolean | null,
): string | null {
  if (!stored) return 'not answered';
  if (stored.answer === 'no') return 'answered no';
  if (stored.answer === 'not-applicable' && !definition.mayBeNotApplicable) {
    return 'may not be answered not applicable';
  }
  if (stored.answer === 'yes') {
    const missing = definition.requiredDetails.filter((key) => !stored.details[key]);
    if (missing.length > 0) return `details missing: ${missing.join(', ')}`;
  }
  if (item === 'signing-certificates-isolated') {
    if (subject.signingHost === null) return 'the request names no signing host';
    if (certificatesOffSystemHost === false) return 'the signing host is one of the system hosts';
  }
  return null;
}
