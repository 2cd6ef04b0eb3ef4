"""Country results reports and partner submissions: templates, intake, checks, harmonisation."""
