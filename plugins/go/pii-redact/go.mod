module pii-redact

go 1.25

require sluice v0.0.0

replace sluice => ../../../guest-sdk/go
