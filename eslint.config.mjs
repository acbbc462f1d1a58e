import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

// The dependency direction of docs/architecture.md, held by tags: a layer may use the layers
// below it, engine and machine never import each other, and only tests may use the rigs in tools/.
const below = {
  'layer:base': [],
  'layer:oci': ['layer:base'],
  'layer:store': ['layer:base', 'layer:oci'],
  'layer:registry': ['layer:base', 'layer:oci', 'layer:store'],
  'layer:snapshot': ['layer:base', 'layer:oci', 'layer:store'],
  'layer:runtime': ['layer:base', 'layer:oci', 'layer:store', 'layer:registry', 'layer:snapshot'],
  'layer:builder': ['layer:base', 'layer:oci', 'layer:store', 'layer:registry', 'layer:snapshot', 'layer:runtime'],
  'layer:network': ['layer:base', 'layer:oci', 'layer:store', 'layer:registry', 'layer:snapshot', 'layer:runtime'],
  'layer:engine': ['layer:base', 'layer:oci', 'layer:store', 'layer:registry', 'layer:snapshot', 'layer:runtime', 'layer:builder', 'layer:network'],
  'layer:machine': ['layer:base', 'layer:oci'],
  'layer:driver': ['layer:base', 'layer:oci', 'layer:machine'],
};
const constraints = (extra) => [
  ...Object.entries(below).map(([sourceTag, allowed]) => ({ sourceTag, onlyDependOnLibsWithTags: [sourceTag, ...allowed, ...extra] })),
  { sourceTag: 'scope:engine', onlyDependOnLibsWithTags: ['scope:engine', 'scope:shared', ...extra] },
  { sourceTag: 'scope:machine', onlyDependOnLibsWithTags: ['scope:machine', 'scope:shared', ...extra] },
  { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['scope:engine', 'scope:machine', 'scope:shared', ...extra] },
  { sourceTag: 'type:tools', onlyDependOnLibsWithTags: ['*'] },
];
// Test files may import the rigs of @berth/tools, which itself depends on every package (for its
// benchmarks): that edge is test-only and never a real cycle.
const boundaries = (extra) => [
  'error',
  {
    enforceBuildableLibDependency: true,
    allow: [],
    depConstraints: constraints(extra),
    ...(extra.length ? { ignoredCircularDependencies: [['@berth/tools', '*']] } : {}),
  },
];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/.node/**', '**/native/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mjs', '**/*.js'],
    plugins: { '@nx': nx },
    rules: {
      '@nx/enforce-module-boundaries': boundaries([]),
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        { selector: 'TSEnumDeclaration', message: 'Use an `as const` object instead of enum.' },
        { selector: 'ExportDefaultDeclaration', message: 'No default exports.' },
        { selector: 'TSModuleDeclaration[kind="namespace"]', message: 'No namespaces.' },
      ],
    },
  },
  {
    files: ['packages/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-console': 'error',
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'exit', message: 'Only apps/*/src/bin may end the process.' },
        { object: 'process', property: 'env', message: 'Packages take options; the apps read the environment.' },
      ],
    },
  },
  {
    files: ['**/*.test.ts'],
    rules: { '@nx/enforce-module-boundaries': boundaries(['type:tools']) },
  },
);
