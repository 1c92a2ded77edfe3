/**
 * Whether these Windows suites run under Wine rather than Windows. scripts/windows/test.sh says so
 * through the environment (Wine passes it on to node.exe). A test of documented Windows behaviour
 * that Wine does not reproduce is skipped there, with the difference written beside it.
 */
export const underWine = process.env.IOMUX_UNDER_WINE === '1';
