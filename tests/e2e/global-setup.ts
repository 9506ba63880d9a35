// The one addition to the original design's test: logging in. The server's one-time login
// link sets the session cookie; every test then starts from that browser state.
import { chromium, type FullConfig } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export default async function globalSetup(config: FullConfig): Promise<void> {
  const loginUrl = process.env.FEATURE_PLANNER_E2E_LOGIN_URL;
  if (!loginUrl) {
    throw new Error('Set FEATURE_PLANNER_E2E_LOGIN_URL to a login link (feature-planner login-link)');
  }
  const { launchOptions, storageState } = config.projects[0].use;
  const browser = await chromium.launch(launchOptions);
  try {
    const page = await browser.newPage();
    const answer = await page.goto(loginUrl);
    if (!answer || !answer.ok()) {
      throw new Error(`The login link was refused (HTTP ${answer ? answer.status() : 'none'}): make a new one`);
    }
    const state = String(storageState);
    mkdirSync(dirname(state), { recursive: true });
    await page.context().storageState({ path: state });
  } finally {
    await browser.close();
  }
}
