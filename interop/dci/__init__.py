"""The DCI protocol: the envelope, signatures, queries, records, and the
Social Registry and Integrated Beneficiary Registry exchanges built on them.

`exchange.dci_receive` is the one entry point the views call."""
