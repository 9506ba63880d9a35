// The original design's E2E test (../shared/original-design.md, section "E2E Tests"), as
// written there: only the import is added (the design's snippet leaves it out). Logging in
// happens before it, in global-setup.ts.
import { test, expect } from '@playwright/test';

// Using Playwright
test('should generate suggestions with streaming', async ({ page }) => {
  await page.goto('/feature-planner');

  // Fill form
  await page.fill('[name="pageOrComponent"]', 'Collections');
  await page.selectOption('[name="featureType"]', 'enhancement');

  // Start generation
  await page.click('button:has-text("Generate Suggestions")');

  // Verify streaming UI
  await expect(page.locator('text=Generating suggestions...')).toBeVisible();
  await expect(page.locator('.progress-bar')).toBeVisible();

  // Wait for completion
  await expect(page.locator('text=Suggestion 1')).toBeVisible({ timeout: 60000 });

  // Verify results
  const suggestions = await page.locator('.suggestion-card').count();
  expect(suggestions).toBeGreaterThanOrEqual(3);
});
