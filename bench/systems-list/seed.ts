export const PROVIDER_COUNT = 50;
export const SYSTEM_COUNT = 10_000;

/**
 * Inserts PROVIDER_COUNT providers and SYSTEM_COUNT systems spread evenly over them, with every
 * nullable column filled and one host per system, so each listed row carries a full payload.
 */
export const SEED_SQL = `
  INSERT INTO providers (name, website, description, created_at, updated_at)
  SELECT format('Provider %s', lpad(i::text, 3, '0')),
         format('https://provider-%s.example.com', i),
         'Seeded by the systems-list benchmark',
         now(), now()
  FROM generate_series(1, ${PROVIDER_COUNT}) AS i;

  INSERT INTO systems (
    provider_id, name, product, product_version, category, criticality, owner_email, hosts,
    network_zone, deploys_software, lifecycle_status, created_at, updated_at
  )
  SELECT p.ids[1 + i % ${PROVIDER_COUNT}],
         format('System %s', lpad(i::text, 5, '0')),
         format('Product %s', i % 200),
         format('%s.%s.%s', i % 10, i % 7, i % 13),
         (ARRAY['remote-management', 'software-deployment', 'remote-support', 'ci-cd',
                'patch-management', 'other'])[1 + i % 6],
         (ARRAY['critical', 'high', 'medium', 'low'])[1 + i % 4],
         format('owner%s@example.com', i % 300),
         jsonb_build_array(jsonb_build_object(
           'hostname', format('host-%s.corp.example.com', i),
           'address', format('10.%s.%s.%s', i / 65536 % 256, i / 256 % 256, i % 256),
           'role', 'application')),
         'management-vlan',
         i % 3 = 0,
         'active',
         now() - make_interval(mins => i),
         now()
  FROM generate_series(1, ${SYSTEM_COUNT}) AS i,
       (SELECT array_agg(id ORDER BY name) AS ids FROM providers) AS p;

  ANALYZE providers;
  ANALYZE systems;
`;
