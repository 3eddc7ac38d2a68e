// Bait: ad blockers block scripts with names like this one. If it runs, ads are not blocked.
window.__patronsAdsAllowed = true;
