// Runs the original design's E2E test against a running Feature Planner.
// tests/browser/test_original_design.py starts the server and sets the two variables:
//   FEATURE_PLANNER_E2E_BASE_URL   the server, e.g. http://127.0.0.1:8123
//   FEATURE_PLANNER_E2E_LOGIN_URL  a one-time login link of that server (global-setup.ts)
// The browser is Debian's Chromium: Playwright never downloads one here.
import { defineConfig, devices } from '@playwright/test';

const baseURL = process.env.FEATURE_PLANNER_E2E_BASE_URL;
if (!baseURL) {
  throw new Error('Set FEATURE_PLANNER_E2E_BASE_URL to the server to test, e.g. http://127.0.0.1:8000');
}

export const STORAGE_STATE = '.auth/state.json';

export default defineConfig({
  testDir: '.',
  testMatch: '*.spec.ts',
  globalSetup: './global-setup.ts',
  timeout: 90_000,
  retries: 0,
  workers: 1,
  forbidOnly: true,
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    ...devices['Desktop Chrome'],
    baseURL,
    storageState: STORAGE_STATE,
    headless: true,
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
});
