import { CreatedCatalogAndAudit1764864000000 } from './1764864000000-CreatedCatalogAndAudit';

/** Every migration in the order it applies; the data source reads this list, not a glob. */
export const MIGRATIONS = [CreatedCatalogAndAudit1764864000000];
