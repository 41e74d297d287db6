"""What every vendor integration shares, stores and billers alike: errors, the hardened HTTP base and
the declared specs of credentials and settings. Vendor packages (``sources/<platform>/``,
``billers/<provider>/``) build on these; nothing here knows a vendor."""
