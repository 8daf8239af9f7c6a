select p.account_id, min(p.placed_at) as first_purchase_at
from purchases p
group by p.account_id
