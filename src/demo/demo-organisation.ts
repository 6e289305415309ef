import type { Criticality, SystemCategory, SystemHost } from '../catalog/catalog.types';
import type { Role } from '../identity/permissions';

export interface DemoSystem {
  provider: string;
  name: string;
  product: string;
  productVersion: string;
  category: SystemCategory;
  criticality: Criticality;
  ownerEmail: string;
  hosts: SystemHost[];
  networkZone: string;
  deploysSoftware: boolean;
}

export interface DemoAlias {
  providerName: string;
  productName: string;
  kevVendorProject: string;
  kevProduct: string;
  reason: string;
}

/** Real providers of remote-management, remote-support, deployment and CI/CD products. */
export const DEMO_PROVIDERS: { name: string; website: string }[] = [
  { name: 'ConnectWise', website: 'https://www.connectwise.com' },
  { name: 'Kaseya', website: 'https://www.kaseya.com' },
  { name: 'N-able', website: 'https://www.n-able.com' },
  { name: 'TeamViewer', website: 'https://www.teamviewer.com' },
  { name: 'BeyondTrust', website: 'https://www.beyondtrust.com' },
  { name: 'Zoho', website: 'https://www.manageengine.com' },
  { name: 'JetBrains', website: 'https://www.jetbrains.com' },
  { name: 'Ivanti', website: 'https://www.ivanti.com' },
  { name: 'SimpleHelp', website: 'https://simple-help.com' },
  { name: 'Microsoft', website: 'https://www.microsoft.com' },
  { name: 'Jenkins', website: 'https://www.jenkins.io' },
  { name: 'GitLab', website: 'https://about.gitlab.com' },
  { name: 'PDQ', website: 'https://www.pdq.com' },
];

function host(hostname: string, address: string, role = 'application'): SystemHost {
  return { hostname, address, role };
}

export const DEMO_SYSTEMS: DemoSystem[] = [
  {
    provider: 'ConnectWise',
    name: 'Service desk remote support',
    product: 'ScreenConnect',
    productVersion: '23.9.7',
    category: 'remote-support',
    criticality: 'critical',
    ownerEmail: 'owner.servicedesk@demo.example',
    hosts: [host('sc01.mgmt.demo.example', '10.20.0.11')],
    networkZone: 'management',
    deploysSoftware: false,
  },
  {
    provider: 'Kaseya',
    name: 'Managed service provider RMM',
    product: 'VSA',
    productVersion: '9.5.7',
    category: 'remote-management',
    criticality: 'critical',
    ownerEmail: 'owner.msp@demo.example',
    hosts: [host('vsa.msp.demo.example', '198.51.100.20')],
    networkZone: 'provider-hosted',
    deploysSoftware: true,
  },
  {
    provider: 'N-able',
    name: 'Endpoint monitoring',
    product: 'N-central',
    productVersion: '2024.6',
    category: 'remote-management',
    criticality: 'high',
    ownerEmail: 'owner.endpoints@demo.example',
    hosts: [host('ncentral.mgmt.demo.example', '10.20.0.14')],
    networkZone: 'management',
    deploysSoftware: true,
  },
  {
    provider: 'TeamViewer',
    name: 'Field engineer remote access',
    product: 'TeamViewer Remote',
    productVersion: '15.40',
    category: 'remote-support',
    criticality: 'medium',
    ownerEmail: 'owner.field@demo.example',
    hosts: [],
    networkZone: 'internet',
    deploysSoftware: false,
  },
  {
    provider: 'BeyondTrust',
    name: 'Privileged vendor access',
    product: 'Remote Support',
    productVersion: '24.1.2',
    category: 'remote-support',
    criticality: 'high',
    ownerEmail: 'owner.pam@demo.example',
    hosts: [host('bt-rs.dmz.demo.example', '10.30.0.5')],
    networkZone: 'dmz',
    deploysSoftware: false,
  },
  {
    provider: 'Zoho',
    name: 'Workstation software deployment',
    product: 'ManageEngine Endpoint Central',
    productVersion: '11.2',
    category: 'software-deployment',
    criticality: 'critical',
    ownerEmail: 'owner.deploy@demo.example',
    hosts: [
      host('mec01.mgmt.demo.example', '10.20.0.21'),
      host('sign01.vault.demo.example', '10.99.0.4', 'signing'),
    ],
    networkZone: 'management',
    deploysSoftware: true,
  },
  {
    provider: 'JetBrains',
    name: 'Build and release pipeline',
    product: 'TeamCity',
    productVersion: '2023.05.3',
    category: 'ci-cd',
    criticality: 'high',
    ownerEmail: 'owner.build@demo.example',
    hosts: [host('teamcity.build.demo.example', '10.40.0.8')],
    networkZone: 'build',
    deploysSoftware: true,
  },
  {
    provider: 'Ivanti',
    name: 'Server patching',
    product: 'Endpoint Manager (EPM)',
    productVersion: '2022 SU5',
    category: 'patch-management',
    criticality: 'high',
    ownerEmail: 'owner.patching@demo.example',
    hosts: [host('epm01.mgmt.demo.example', '10.20.0.31')],
    networkZone: 'management',
    deploysSoftware: true,
  },
  {
    provider: 'SimpleHelp',
    name: 'Branch office support',
    product: 'SimpleHelp',
    productVersion: '5.5.7',
    category: 'remote-support',
    criticality: 'medium',
    ownerEmail: 'owner.branches@demo.example',
    hosts: [host('help.branch.demo.example', '10.50.0.3')],
    networkZone: 'branch',
    deploysSoftware: false,
  },
  {
    provider: 'Microsoft',
    name: 'Enterprise software distribution',
    product: 'Configuration Manager',
    productVersion: '2403',
    category: 'software-deployment',
    criticality: 'critical',
    ownerEmail: 'owner.deploy@demo.example',
    hosts: [
      host('cm01.mgmt.demo.example', '10.20.0.40'),
      host('pki-sign.vault.demo.example', '10.99.0.7', 'signing'),
    ],
    networkZone: 'management',
    deploysSoftware: true,
  },
  {
    provider: 'Jenkins',
    name: 'Legacy build server',
    product: 'Jenkins',
    productVersion: '2.426',
    category: 'ci-cd',
    criticality: 'medium',
    ownerEmail: 'owner.build@demo.example',
    hosts: [host('jenkins.build.demo.example', '10.40.0.12')],
    networkZone: 'build',
    deploysSoftware: true,
  },
  {
    provider: 'GitLab',
    name: 'Source control and CI',
    product: 'GitLab CE/EE',
    productVersion: '16.7.1',
    category: 'ci-cd',
    criticality: 'high',
    ownerEmail: 'owner.build@demo.example',
    hosts: [host('gitlab.build.demo.example', '10.40.0.2')],
    networkZone: 'build',
    deploysSoftware: true,
  },
  {
    provider: 'PDQ',
    name: 'Lab software deployment',
    product: 'PDQ Deploy',
    productVersion: '19.3',
    category: 'software-deployment',
    criticality: 'low',
    ownerEmail: 'owner.lab@demo.example',
    hosts: [host('pdq.lab.demo.example', '10.60.0.9')],
    networkZone: 'lab',
    deploysSoftware: true,
  },
];

/** Names KEV uses for demo products that it lists under another name or its parent company. */
export const DEMO_ALIASES: DemoAlias[] = [
  {
    providerName: 'Kaseya',
    productName: 'VSA',
    kevVendorProject: 'Kaseya',
    kevProduct: 'Virtual System/Server Administrator (VSA)',
    reason: 'KEV spells out the product name',
  },
  {
    providerName: 'TeamViewer',
    productName: 'TeamViewer Remote',
    kevVendorProject: 'TeamViewer',
    kevProduct: 'Desktop',
    reason: 'KEV lists the remote-access client under its former name',
  },
  {
    providerName: 'BeyondTrust',
    productName: 'Remote Support',
    kevVendorProject: 'BeyondTrust',
    kevProduct: 'Privileged Remote Access (PRA) and Remote Support (RS)',
    reason: 'KEV lists Remote Support together with Privileged Remote Access',
  },
  {
    providerName: 'Zoho',
    productName: 'ManageEngine Endpoint Central',
    kevVendorProject: 'Zoho',
    kevProduct: 'Desktop Central',
    reason: 'Endpoint Central was called Desktop Central until 2022',
  },
  {
    providerName: 'Zoho',
    productName: 'ManageEngine Endpoint Central',
    kevVendorProject: 'Zoho',
    kevProduct: 'ManageEngine',
    reason: 'Some KEV entries name only the ManageEngine product family; review each match',
  },
  {
    providerName: 'Jenkins',
    productName: 'Jenkins',
    kevVendorProject: 'Jenkins',
    kevProduct: 'Jenkins Command Line Interface (CLI)',
    reason: 'The CLI ships with every Jenkins controller',
  },
];

/**
 * One demo user per role. The passwords are published in the README and exist only in the demo
 * seed, which runs only on an empty database.
 */
export const DEMO_USERS: {
  email: string;
  name: string;
  password: string;
  roles: Role[];
  manager?: string;
}[] = [
  {
    email: 'admin@demo.example',
    name: 'Avery Admin',
    password: 'demo-admin-password',
    roles: ['platform-admin'],
  },
  {
    email: 'manager@demo.example',
    name: 'Morgan Manager',
    password: 'demo-manager-password',
    roles: ['manager'],
  },
  {
    email: 'security@demo.example',
    name: 'Sam Security',
    password: 'demo-security-password',
    roles: ['security-approver'],
    manager: 'manager@demo.example',
  },
  {
    email: 'owner@demo.example',
    name: 'Olive Owner',
    password: 'demo-owner-password',
    roles: ['system-owner'],
    manager: 'manager@demo.example',
  },
  {
    email: 'requester@demo.example',
    name: 'Riley Requester',
    password: 'demo-requester-password',
    roles: ['requester'],
    manager: 'manager@demo.example',
  },
  {
    email: 'auditor@demo.example',
    name: 'Alex Auditor',
    password: 'demo-auditor-password',
    roles: ['auditor'],
  },
];

/** The demo user who owns every demo system. */
export const DEMO_OWNER = 'owner@demo.example';
