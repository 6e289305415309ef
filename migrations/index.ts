import { CreatedCatalogAndAudit1764864000000 } from './1764864000000-CreatedCatalogAndAudit';
import { AddedKnownExploitedVulnerabilities1764864100000 } from './1764864100000-AddedKnownExploitedVulnerabilities';
import { AddedUsersAndSessions1764864200000 } from './1764864200000-AddedUsersAndSessions';
import { AddedNotifications1764864300000 } from './1764864300000-AddedNotifications';
import { AddedMfaAndApiTokens1764864400000 } from './1764864400000-AddedMfaAndApiTokens';
import { AddedToolApprovals1764864500000 } from './1764864500000-AddedToolApprovals';
import { AddedAccountsAndGrants1764864600000 } from './1764864600000-AddedAccountsAndGrants';
import { AddedOpenIdConnect1764864700000 } from './1764864700000-AddedOpenIdConnect';
import { AddedAccessReviews1764864800000 } from './1764864800000-AddedAccessReviews';
import { AddedReviewReminders1764864900000 } from './1764864900000-AddedReviewReminders';

/** Every migration in the order it applies; the data source reads this list, not a glob. */
export const MIGRATIONS = [
  CreatedCatalogAndAudit1764864000000,
  AddedKnownExploitedVulnerabilities1764864100000,
  AddedUsersAndSessions1764864200000,
  AddedNotifications1764864300000,
  AddedMfaAndApiTokens1764864400000,
  AddedToolApprovals1764864500000,
  AddedAccountsAndGrants1764864600000,
  AddedOpenIdConnect1764864700000,
  AddedAccessReviews1764864800000,
  AddedReviewReminders1764864900000,
];
